"""Quickstart: a small MT-EmotiEffNet trained on SynthFaces in a few minutes on a CPU.

    python train.py --config configs/quickstart.py

Result (measured; see the README): TO BE MEASURED.
"""

from configs import common


def get_config():
    c = common.base_config()
    c.model.backbone = "efficientnet_b0"
    c.model.width_multiplier = 0.5
    c.model.depth_multiplier = 0.5
    c.model.drop_rate = 0.1
    c.data.image_size = 48
    c.data.builder_kwargs = dict(domain="studio", image_size=48,
                                 sizes=dict(train=4000, validation=500))
    c.batch_size = 32
    c.phases.full.epochs = 4
    c.phases.full.learning_rate = 2e-3
    c.log_every_steps = 20
    return c
