"""iFAN's cross-data-set hybrid training (Algorithm 1) as a two-stage pipeline.

    workdir/pretrain   stage 1, task-wise pre-training (lines 1-8): ITER 0 (no re-encoder,
                       no feedback), the data sets in turn, ``ifan.pretrain_epochs`` epochs
                       each, RMSprop at ``ifan.pretrain_learning_rate`` (the paper: 30
                       epochs at 1e-3);
    workdir/finetune   stage 2, batch-wise fine-tuning (lines 9-16): the full model with
                       ``ifan.num_iterations`` iterations, re-encoders and integrator,
                       starting from stage 1's weights (the re-encoders fresh), one batch
                       of each data set in turn, ``phases.full`` epochs and learning rate
                       (the paper: 200 epochs, 1e-3 -> 1e-6);
    workdir/plots      metrics against the iteration, predictions of every iteration over
                       validation faces, and the fine-tuning curves.

Each stage is the generic loop (`affectjax.train.loop.fit`), so each resumes on its own
after a kill and a finished stage is not trained again. ``ifan.pretrain_epochs = 0``
skips stage 1. ``final_metrics.json`` is stage 2's, with stage 1's evaluation under
``pretrain``.

Algorithm 1, line 12 updates ITER times per batch, once per interaction level; here each
batch is one update of the loss summed over iterations 0..ITER (eq. 5, which the same
section optimises): the two coincide for ITER = 1 and this reading keeps one compiled
step.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import ml_collections

from affectjax.methods.ifan import method as method_lib
from affectjax.methods.ifan import plots as plots_lib
from affectjax.train import loop
from affectjax.train.method import Method

ONLY_AT_END = 10**9  # eval_every_epochs of stage 1: its weights are the last ones


def _copy(config: Any) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(config.to_dict() if hasattr(config, "to_dict")
                                     else dict(config))


def pretrain_config(config: Any) -> ml_collections.ConfigDict | None:
    """Stage 1's config (None when ``ifan.pretrain_epochs`` is 0)."""
    epochs = int(config.ifan.pretrain_epochs)
    if epochs <= 0:
        return None
    c = _copy(config)
    c.ifan.num_iterations = 0
    c.ifan.order, c.ifan.order_epochs = "sequential", epochs
    c.phase_order = ("full",)
    full = config.phases[config.phase_order[0]]
    c.phases = ml_collections.ConfigDict(dict(full=dict(
        epochs=epochs, learning_rate=float(config.ifan.pretrain_learning_rate),
        trainable="all", lr_multipliers=dict(full.get("lr_multipliers", {}) or {}))))
    c.optimizer.schedule = "constant"
    c.eval_every_epochs = ONLY_AT_END
    return c


def finetune_config(config: Any, init_from: str) -> ml_collections.ConfigDict:
    """Stage 2's config: the full model, batches alternating over the data sets."""
    c = _copy(config)
    c.ifan.order = "alternate"
    if init_from:
        c.init_from = init_from
    return c


def run(config: Any, workdir: str) -> dict[str, Any]:
    """Runs both stages into `workdir` (module docstring); returns the final metrics."""
    stage: Method = method_lib.IFAN_STAGE
    pretrained, first = config.get("init_from", ""), None
    cfg1 = pretrain_config(config)
    if cfg1 is not None:
        _, first = loop.fit(cfg1, os.path.join(workdir, "pretrain"), stage)
        pretrained = os.path.join(workdir, "pretrain")
    cfg2 = finetune_config(config, pretrained)
    finetune_dir = os.path.join(workdir, "finetune")
    state, final = loop.fit(cfg2, finetune_dir, stage)
    specialised = method_lib.specialize(cfg2)
    paths = plots_lib.write_plots(workdir, cfg2, specialised, state, final["eval"],
                                  logs_path=os.path.join(finetune_dir, "metrics.jsonl"))
    final = dict(final, workdir=workdir, pretrain=first and first["eval"], plots=paths)
    with open(os.path.join(workdir, "final_metrics.json"), "w") as f:
        json.dump({k: v for k, v in final.items() if k != "plots"}, f, indent=2,
                  sort_keys=True)
    return final


IFAN = dataclasses.replace(
    method_lib.IFAN_STAGE,
    specialize=lambda config: method_lib.specialize(config, pipeline=run))
"""The registered ``ifan`` method: the two-stage pipeline of Algorithm 1."""
