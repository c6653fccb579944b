"""integrated Face Analytics Network (Li et al., ACM MM 2017, paper 4): the ``ifan`` method.

One FC-DenseNet predicts facial landmarks, face parsing and emotion; each task's
prediction is re-encoded and fed back into the backbone for ITER iterations (the task
integrator, eq. 4; `affectjax.models.ifan`); the network learns from data sets that
each label one task (cross-data-set hybrid training, Algorithm 1: `pipeline`), with a
BatchNorm set per data set (`method`), batches from one data set at a time (`data`),
the loss of eq. 5 and every metric per iteration (`objectives`), and pictures of every
iteration's predictions (`plots`); `report` turns sweeps into the paper's tables.
"""
