"""The network CCT starts from: one ResNet-18 trained on AffectNet (CCT paper, Sec. 5.2.3).

    python -m affectjax.convert resnet18-f37072fd.pth --arch resnet18 --out pretrained/resnet18
    python train.py --config configs/cct_affectnet_pretrain.py --workdir runs/cct_affectnet \\
        --config.data.manual_dir=/path/to/AffectNet --config.init_from=pretrained/resnet18

The ``cct`` method with one network and no consensus is plain cross-entropy training, so
this run's checkpoint is a one-member ensemble that `configs/cct_affwild2.py` broadcasts
to its three members (``--config.init_from=runs/cct_affectnet``; each member draws its
own classifier). The paper's best start is AffectNet (Table 5: overall 0.4814, against
0.460 from RAF-DB and 0.454 from MS-Celeb-1M); it does not give the pretraining recipe, so
this config uses the CCT recipe itself: torchvision's ResNet-18 (ImageNet weights
converted with `affectjax.convert`; any converted ResNet-18 works), 224 px, batch 256,
Adam with backbone 1e-3 and classifier 1e-2, x0.95 per epoch, the authors' augmentation
(horizontal flip, colour jitter 0.25 with probability 0.5, random affine translate 0.1 and
scale 1-1.25), 8 AffectNet classes in ABAW order, the rows coded 8-10 dropped.
AffectNet is licensed: bring it in its original layout (see `affectjax.data.readers`).

Result: not measured by this project (AffectNet is not available here; on a 2-core CPU
one step of this config takes minutes). Use a GPU/TPU.
"""

import ml_collections

from configs import common


def get_config() -> ml_collections.ConfigDict:
    c = common.cct_config(epochs=10, num_networks=1, consensus=False)
    c.model = ml_collections.ConfigDict(dict(name="resnet18", num_classes=8))
    c.data.name = "affectnet"
    c.data.manual_dir = ""  # required: --config.data.manual_dir=/path/to/AffectNet
    c.data.image_size = 224
    c.data.builder_kwargs = dict(image_size=224, drop_non_class=True)
    c.data.augment.enabled = True  # the authors' augmentation (common.cct_config)
    c.batch_size = 256
    c.phases.full.learning_rate = 1e-3
    c.log_every_steps = 100
    c.checkpoint_every_steps = 1000
    return c
