"""The EMA loss-balancing study (paper 5) on AffectNet: EXPR + VA on a ResNet-50.

    python train.py --config configs/balance_affectnet.py --config.balancer.name=ema \\
        --config.data.manual_dir=/path/to/AffectNet --config.init_from=pretrained/resnet50

Hard parameter sharing on torchvision's ResNet-50 with heads for the 8 expressions in
ABAW order (CE; AffectNet's rows coded 8-10 dropped) and valence/arousal (tanh, CCC loss),
every balancer from the same initial heads (``init_seed`` 0), beta 0.1 for the EMA family,
``score`` = expression F1 + mean CCC (Table 2's "All" for AffectNet). Data: AffectNet
(licensed) in its original layout (`affectjax.data.readers.read_affectnet`). Optimiser and
schedule as configs/balance_affwild2.py (the paper gives none). Every balancer:

    python -m affectjax.sweep --config configs/balance_affectnet.py \\
        --grid balancer.name=ew,uw,dwa,gradnorm,ema,rema,dwema --seeds 0 \\
        --set data.manual_dir=/path/to/AffectNet --set init_from=pretrained/resnet50 \\
        --workdir runs/sweeps/balance_affectnet

Result: not measured by this project (the data are not available here; use a GPU/TPU).
"""

import ml_collections

from configs import common


def get_config() -> ml_collections.ConfigDict:
    c = common.balance_config(epochs=10)
    c.model.update(backbone="resnet50", backbone_kwargs=dict())
    c.mtl.tasks = "va+expr"
    c.data.name = "affectnet"
    c.data.manual_dir = ""  # required: --config.data.manual_dir=/path/to/AffectNet
    c.data.image_size = 224
    c.data.builder_kwargs = ml_collections.ConfigDict(dict(image_size=224,
                                                           drop_non_class=True))
    c.data.augment.enabled = False
    c.batch_size = 64
    c.phases.full.learning_rate = 1e-4
    c.log_every_steps = 100
    c.checkpoint_every_steps = 1000
    return c
