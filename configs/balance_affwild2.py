"""The EMA loss-balancing study (paper 5) on Aff-Wild2: VA + EXPR + AU on a ResNet-50.

    python -m affectjax.convert resnet50-11ad3fa6.pth --arch resnet50 --out pretrained/resnet50
    python train.py --config configs/balance_affwild2.py --config.balancer.name=ema \\
        --config.data.manual_dir=/path/to/abaw4_mtl --config.init_from=pretrained/resnet50

Hard parameter sharing on torchvision's ResNet-50 (the paper's backbone; converted ImageNet
weights are a sensible start, ``init_from``), heads for valence/arousal (tanh, CCC loss),
the 8 ABAW expressions (CE) and the 12 AUs as ONE task (BCE), every balancer from the same
initial heads (``init_seed`` 0), beta 0.1 for the EMA family, ``score`` = P_MTL = mean
CCC + expression F1 + AU F1 (Table 2's "All" for Aff-Wild2). Data: the ABAW4 MTL set
(s-Aff-Wild2, licensed) in its original layout (`affectjax.data.readers.read_affwild2_mtl`).
The paper gives no optimiser, schedule or epochs; this config uses Adam 1e-4 for 10
epochs at 224 px, batch 64. Every balancer of Table 2:

    python -m affectjax.sweep --config configs/balance_affwild2.py \\
        --grid balancer.name=ew,uw,dwa,gradnorm,ema,rema,dwema --seeds 0 \\
        --set data.manual_dir=/path/to/abaw4_mtl --set init_from=pretrained/resnet50 \\
        --workdir runs/sweeps/balance_affwild2

Result: not measured by this project (the data are not available here; use a GPU/TPU).
"""

import ml_collections

from configs import common


def get_config() -> ml_collections.ConfigDict:
    c = common.balance_config(epochs=10)
    c.model.update(backbone="resnet50", backbone_kwargs=dict())
    c.mtl.tasks = "va+expr+au"
    c.data.name = "affwild2_mtl"
    c.data.manual_dir = ""  # required: --config.data.manual_dir=/path/to/abaw4_mtl
    c.data.image_size = 224
    c.data.builder_kwargs = ml_collections.ConfigDict(dict(image_size=224))
    c.data.augment.enabled = False
    c.batch_size = 64
    c.phases.full.learning_rate = 1e-4
    c.log_every_steps = 100
    c.checkpoint_every_steps = 1000
    return c
