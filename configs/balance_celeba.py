"""The EMA loss-balancing study (paper 5) on CelebA: 40 binary attributes, 40 tasks.

    python -m affectjax.convert resnet18-f37072fd.pth --arch resnet18 --out pretrained/resnet18
    python train.py --config configs/balance_celeba.py --config.balancer.name=ema \\
        --config.data.manual_dir=/path/to/celeba --config.init_from=pretrained/resnet18

"Due to computational constraints, we use a ResNet18 backbone feeding to a dense layer of
40 neurons to predict on the 40 tasks", each attribute its own task with its own loss
weight, beta 0.2 for the EMA family, every balancer from the same initial head
(``init_seed`` 0), ``score`` the mean F1 over the 40 attributes (Table 1). Data: CelebA
in its distributed layout (``img_align_celeba/``, ``list_attr_celeba.txt``,
``list_eval_partition.txt``; `affectjax.data.readers.read_celeba`), stored at 112 px.
Optimiser and schedule are this project's (the paper gives none): Adam 1e-4, 10 epochs,
batch 128. Table 1:

    python -m affectjax.sweep --config configs/balance_celeba.py \\
        --grid balancer.name=ew,uw,dwa,gradnorm,ema,rema,dwema --seeds 0 \\
        --set data.manual_dir=/path/to/celeba --set init_from=pretrained/resnet18 \\
        --workdir runs/sweeps/balance_celeba

Result: not measured by this project (the data are not available here; use a GPU/TPU).
"""

import ml_collections

from affectjax.data.readers.celeba import CELEBA_ATTRIBUTES
from configs import common


def get_config() -> ml_collections.ConfigDict:
    c = common.balance_config(epochs=10)
    c.model.update(backbone="resnet18", backbone_kwargs=dict())
    c.mtl.update(tasks="attr", attributes=CELEBA_ATTRIBUTES)
    for name in ("ema", "rema", "dwema"):
        c.balancer[name].beta = 0.2
    c.data.name = "celeba"
    c.data.manual_dir = ""  # required: --config.data.manual_dir=/path/to/celeba
    c.data.image_size = 112
    c.data.builder_kwargs = ml_collections.ConfigDict(dict(image_size=112))
    c.data.augment.enabled = False
    c.batch_size = 128
    c.phases.full.learning_rate = 1e-4
    c.log_every_steps = 100
    c.checkpoint_every_steps = 1000
    return c
