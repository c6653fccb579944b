"""The EMA loss-balancing study (paper 5) on SynthFaces: VA + EXPR + AU, hard sharing.

    python train.py --config configs/balance_synthfaces.py:quick

Aff-Wild2's three tasks on SynthFaces (valence/arousal, 8 expressions and the 12 AUs as
ONE task, paper "Experiments"), one shared backbone with a head per task, trained
under each balancer from the same initial weights (``init_seed`` 0; ``seed`` changes the
data order and dropout). ``score`` is ABAW's P_MTL = mean CCC + expression macro F1 + AU
F1, the paper's Table 2 "All" for Aff-Wild2. ``:quick`` is a narrow 4-block EfficientNet
(`efficientnet_tiny` at width 2) at 64 px for 8 epochs; the default a ResNet-18 at 112 px
(the paper: ResNet-50 on the real sets, configs/balance_affwild2.py).

"studio" faces, not "wild": a balancer can only matter where the tasks are learnt. On
"wild" faces at 64 px the quick setting learns almost nothing in 8 epochs (measured, EW,
seed 0: CCC 0.04, expression F1 0.11, AU F1 0.09, P_MTL 0.245); ``--config.data.
builder_kwargs.domain=wild`` runs it.

``:quick,scaled`` multiplies the AU loss by 100 before the balancer (``mtl.loss_scale.
au=100``), the setting of one task's loss dwarfing the others that EMA is meant for.
``fixed`` weights are 1 / (each task's loss at initialisation, when every prediction is
uninformative: CCC loss 1, CE ln 8, BCE ln 2; times 1/100 for the scaled AU loss), the
static counterpart of EMA's 1 / moving average.

Tables 1-2 in miniature (docs/balancing.md), three seeds each:

    python -m affectjax.sweep --config configs/balance_synthfaces.py:quick \\
        --grid balancer.name=ew,uw,dwa,gradnorm,ema,rema,dwema,fixed --seeds 0,1,2 \\
        --workdir runs/sweeps/balance_synthfaces
    python -m affectjax.sweep --config configs/balance_synthfaces.py:quick,scaled \\
        --grid balancer.name=ew,uw,dwa,gradnorm,ema,rema,dwema,fixed --seeds 0,1,2 \\
        --workdir runs/sweeps/balance_synthfaces_scaled
"""

import math

import ml_collections

from configs import common

_FLAGS = ("quick", "full", "scaled")


def get_config(arg: str = "full") -> ml_collections.ConfigDict:
    flags = {t.strip() for t in arg.split(",") if t.strip()}
    if flags - set(_FLAGS):
        raise ValueError(f"config argument {arg!r}; choose from {list(_FLAGS)}")
    quick = "quick" in flags
    c = common.balance_synthfaces_config(quick=quick)
    c.mtl.tasks = "va+expr+au"
    au_scale = 100.0 if "scaled" in flags else 1.0
    c.balancer.fixed = dict(weights=(1.0, 1.0 / math.log(8), 1.0 / (au_scale * math.log(2))))
    if au_scale != 1.0:
        c.mtl.loss_scale = dict(au=au_scale)
    return c
