"""Hard-sharing multi-task learning with any loss balancer: the EMA balancing study (paper 5).

Lakkapragada et al.'s EMA loss balancing (EMA, REMA, DWEMA; `affectjax.balancing`) is
compared against EW, UW, DWA and GradNorm on one shared backbone with a head per task
(`method`), with the task kinds and their metrics in `tasks` and the sweep tables and the
balancers' weights over training in `report`.
"""
