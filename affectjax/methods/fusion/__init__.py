"""Weakly-supervised multimodal multi-task learning (Dai et al., 2021, paper 3): ``fusion``.

Text, audio and visual sequences are fused early, late or both (EF, LF, EF-LF) by an
averaging, bi-LSTM or Transformer encoder (`affectjax.models.fusion`) and feed one linear
head per task (`method`); the tasks' losses and the paper's metrics are in `tasks`; a
teacher trained on another data set gives weak labels for the tasks a data set lacks
(`teachers`, stored by `weak_labels`); `report` turns sweeps into the paper's tables.
"""
