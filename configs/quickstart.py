"""Quickstart: a small MT-EmotiEffNet trained on SynthFaces in a few minutes on a CPU.

    python train.py --config configs/quickstart.py

Over seeds (the measured figures below are seed 0 of this sweep):

    python -m affectjax.sweep --config configs/quickstart.py --seeds 0,1,2 \\
        --workdir runs/sweeps/quickstart

The method of the paper (emotieffnet: joint 8-expression + valence/arousal head, loss
eq. 1 with class weights, SAM around Adam, no augmentation) on a narrow 4-block
EfficientNet (`efficientnet_tiny` at width 2, 61k parameters), 64×64 SynthFaces
"studio" images (3200 train / 480 validation, generated and cached in ``data.data_dir``
on the first run), 8 epochs of 100 steps from scratch in one phase (all weights: a random
backbone has nothing to keep frozen), cosine learning-rate decay.

Measured (seed 0, 2-core CPU): on the validation split, expression macro-F1 0.803 and
accuracy 0.817 (chance 0.125), CCC valence 0.819 and arousal 0.714 (best checkpoint: step
600, F1 0.811). The whole command on a fresh clone, data generation and compilation
included: 1 min 58 s wall (800 steps, about 360 images/s once compiled); 2 min 48 s when
the machine was shared with other jobs.
"""

from configs import common


def get_config():
    c = common.base_config()
    c.model.backbone = "efficientnet_tiny"
    c.model.width_multiplier = 2.0
    c.model.drop_rate = 0.1
    c.data.image_size = 64
    c.data.builder_kwargs = dict(domain="studio", image_size=64,
                                 sizes=dict(train=3200, validation=480))
    c.batch_size = 32
    c.phases.full.epochs = 8
    c.phases.full.learning_rate = 3e-3
    c.optimizer.schedule = "cosine"
    c.log_every_steps = 20
    return c
