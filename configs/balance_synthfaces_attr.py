"""The EMA loss-balancing study (paper 5) on many binary tasks: SynthFaces' 40 attributes.

    python train.py --config configs/balance_synthfaces_attr.py:quick

The built-in stand-in for the paper's CelebA setting (configs/balance_celeba.py): each of
the 40 binary attributes of SynthFaces' attribute view (``builder_kwargs.attributes``;
`affectjax.data.synthfaces.SYNTHFACES_ATTRIBUTES`: the 12 AUs, the 8 expressions one vs
rest, affect, hair, face shape) is its own task with its own loss weight ("we backpropagate
on each task individually, based on its individual loss coefficient"), one dense layer of
40 units on a shared backbone, beta 0.2 for the EMA family as the paper's CelebA runs, and
``score`` the mean F1 over the 40 attributes (Table 1). ``:quick`` is a narrow
`efficientnet_tiny` at 64 px for 8 epochs; the default a ResNet-18 (the paper's CelebA
backbone) at 112 px.

    python -m affectjax.sweep --config configs/balance_synthfaces_attr.py:quick \\
        --grid balancer.name=ew,uw,dwa,ema,rema,dwema,gradnorm --seeds 0,1,2 \\
        --jobs 2 --workdir runs/sweeps/balance_synthfaces_attr

No ``fixed`` row here: the 40 tasks share one loss (BCE), so weights of 1 / (initial
loss) are all 1 / ln 2, a uniform scale that Adam's updates do not see (EW again).
"""

import ml_collections

from affectjax.data.synthfaces import SYNTHFACES_ATTRIBUTES
from configs import common


def get_config(arg: str = "full") -> ml_collections.ConfigDict:
    if arg not in ("full", "quick"):
        raise ValueError(f"config argument {arg!r}; choose full or quick")
    quick = arg == "quick"
    c = common.balance_synthfaces_config(quick=quick, attributes=True)
    c.mtl.update(tasks="attr", attributes=SYNTHFACES_ATTRIBUTES)
    for name in ("ema", "rema", "dwema"):
        c.balancer[name].beta = 0.2
    return c
