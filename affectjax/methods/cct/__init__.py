"""Consensual Collaborative Training (Gera & Balasubramanian, paper 2): the ``cct`` method.

M networks of one architecture, held as ONE stacked parameter tree (`affectjax.ensemble`)
and trained in one jitted step on (1 - lambda) sum_j CE_j + lambda sum_{j != k} KL(p_k || p_j)
with the lambda ramp of eq. 4 (`method`).
"""
