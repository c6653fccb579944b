"""MT-EmotiEffNet MTL heads on SynthFaces: features -> heads -> tuning -> report.

Paper 1 (Sec. 3.2, Table 2 "our model"): the frozen MT-EmotiEffNet of the quickstart gives
per face its embedding and 10 logits; VA head on the logits, EXPR and AU heads on both,
trained separately (one phase per head), then per-AU thresholds and a blend of the heads'
expression scores with the backbone's own, tuned on the validation split.

    python train.py --config configs/quickstart.py --workdir runs/quickstart
    python train.py --config configs/mtl_heads_synthfaces.py --workdir runs/mtl_heads \\
        --config.features.workdir=runs/quickstart

Over seeds of the heads on one backbone (the table below is seed 0):

    python -m affectjax.sweep --config configs/mtl_heads_synthfaces.py --seeds 0,1,2 \\
        --set features.workdir=runs/quickstart --workdir runs/sweeps/mtl_heads

``--config.features.workdir`` (a trainer run, its ``best/`` checkpoint) or
``--config.features.checkpoint`` (a ``python -m affectjax.convert`` directory) selects the
backbone; with neither the features come from a randomly initialised backbone (a
baseline). A rerun reuses the feature cache (``<workdir>/features``) and gives the same
metrics. ``configs/mtl_heads_synthfaces.py:simultaneous`` trains the three heads at once,
weighted by ``config.balancer`` (any `affectjax.balancing` name, e.g.
``--config.balancer.name=dwa``).

Measured (seed 0; 2-core CPU; backbone: ``runs/quickstart`` of a fresh clone at its best
checkpoint, step 600; 3200 train / 480 validation faces;
validation split, which also tunes the thresholds and the blend, so "tuned" is
optimistic as in the paper):

| run                               | AU thr. | P_MTL | P_VA  | P_EXPR | P_AU  |
|-----------------------------------|---------|-------|-------|--------|-------|
| chance                            | -       | 0.474 | 0.000 | 0.124  | 0.350 |
| separate (default)                | 0.5     | 2.393 | 0.787 | 0.812  | 0.794 |
| separate + backbone blend w = 0.4 | tuned   | 2.438 | 0.787 | 0.821  | 0.830 |
| :simultaneous, balancer dwa       | 0.5     | 2.399 | 0.787 | 0.819  | 0.793 |
| :simultaneous, dwa, w = 0.9       | tuned   | 2.439 | 0.787 | 0.821  | 0.832 |
| untrained backbone (no workdir)   | 0.5     | 0.196 | 0.000 | 0.035  | 0.161 |
| untrained backbone, w = 0.7       | tuned   | 0.423 | 0.000 | 0.074  | 0.350 |

CCC valence 0.825, arousal 0.749 (separate). Wall time of the command: 40 s with the
feature extraction, 28 s on a rerun from the feature cache (3000 head steps; the
simultaneous variant 1000 steps, 22 s); reruns give identical metrics. A backbone trained before a change of floating-point
summation order (the depthwise kernel gradient) gave 2.395 / 2.438 / 2.402 / 2.439: the
last digits depend on the exact backbone weights. On SynthFaces the
separate and simultaneous variants tie (the paper finds separate better on Aff-Wild2,
Table 2); the features of an untrained backbone are nearly constant and the heads then
predict no better than chance.
"""

import ml_collections

from configs import common
from configs import quickstart


def get_config(arg: str = "separate") -> ml_collections.ConfigDict:
    from affectjax.methods.emotieffnet import mtl_heads  # pylint: disable=import-outside-toplevel

    backbone = quickstart.get_config()
    c = common.base_config()
    c.method = "mtl_heads"
    # The frozen backbone (as trained by configs/quickstart.py) and its images.
    c.backbone = backbone.model
    c.data = backbone.data
    c.features = ml_collections.ConfigDict(dict(
        splits=("train", "validation"), batch_size=64,
        checkpoint="",  # converted checkpoint directory (python -m affectjax.convert),
        workdir="",  # or trainer run directory of the backbone (best/ checkpoint).
        cache_dir=""))  # "" = <workdir>/features.
    c.model = ml_collections.ConfigDict(dict(
        name="mtl_heads", va_input="logits", expr_input="both", au_input="both",
        va_feeds_heads=False,  # True: the VA output also feeds EXPR and AU (Fig. 1).
        hidden=(128,), dropout_rate=0.0, num_expressions=8, num_aus=12))
    c.loss = ml_collections.ConfigDict(dict(
        task_weights=dict(va=1.0, expr=1.0, au=1.0),
        l2=1e-4,  # times each head's squared kernel weights, added to its task loss.
        expr_class_weights=True,  # w_c = max_k N_k / N_c (eq. 1).
        au_weights="balanced",  # balanced (sklearn) | pos | none.
        ccc_ddof=0, ccc_eps=1e-7))
    c.optimizer.sam_rho = 0.0
    c.optimizer.schedule = "cosine"
    c.batch_size = 64
    c.balancer = ml_collections.ConfigDict(dict(name="ew"))
    # The heads' loop: 50 steps an epoch; log, evaluate and checkpoint sparingly.
    c.log_every_steps, c.eval_every_epochs, c.checkpoint_every_epochs = 10, 5, 20
    c.progress_bar = False
    if arg == "separate":
        c.phase_order, c.phases = mtl_heads.separate_phases(epochs=20, learning_rate=3e-3)
    elif arg == "simultaneous":
        c.phase_order, c.phases = mtl_heads.simultaneous_phases(epochs=20, learning_rate=3e-3)
    else:
        raise ValueError(f"config argument {arg!r}; choose separate or simultaneous")
    c.tuning = ml_collections.ConfigDict(dict(expert="backbone"))  # none | backbone.
    return c
