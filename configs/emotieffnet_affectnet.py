"""MT-EmotiEffNet on AffectNet, the paper's setting (Savchenko, ABAW4 2022, Sec. 3.1).

    python -m affectjax.convert PRETRAINED.pt --arch emotieffnet --out pretrained/b0
    python train.py --config configs/emotieffnet_affectnet.py \\
        --config.data.manual_dir=/path/to/AffectNet --config.init_from=pretrained/b0

Over the paper's seeds (with the same --set flags for the data paths):

    python -m affectjax.sweep --config configs/emotieffnet_affectnet.py --seeds 0,1,2 \\
        --set data.manual_dir=/path/to/data --workdir runs/sweeps/emotieffnet_affectnet

`tf_efficientnet_b0` (TF "same" padding, BN eps 1e-3) with one Linear(1280 -> 8 + 2) head,
224×224 inputs with ImageNet mean/std and no augmentation, loss eq. 1 (1 - mean CCC of
valence and arousal + class-weighted cross-entropy, w_c = max_k N_k / N_c), SAM
(rho 0.05) around Adam, batch 48; phase 1 trains only the head (lr 1e-3, 3 epochs),
phase 2 all weights (lr 1e-4, 6 epochs). The authors start from a face-identification
EfficientNet (timm ``tf_efficientnet_b0_ns`` fine-tuned on VGGFace2); give its converted
weights (or any converted EfficientNet-B0) in ``init_from`` — the head-only phase is
meaningless on a random backbone. AffectNet is licensed: bring it in its original layout
(``Manually_Annotated_file_lists/{training,validation}.csv`` + images); the first run
stores it as a TFDS data set in ``data.data_dir``.

Data: as the authors, the rows with expression codes 8–10 (None, Uncertain, No-Face) are
dropped (``data.builder_kwargs.drop_non_class=True``), leaving 287,651 training and 4,000
validation images of the manually annotated set; the run prints each split's size on
stderr, e.g. ``data affectnet train: 287,651 examples (… rows with codes 8-10 dropped)``.
``--config.data.builder_kwargs.drop_non_class=False`` keeps them with ``expr = -1`` (their
valence/arousal still train the VA head); that setting is prepared and cached apart.

Result: not measured by this project (AffectNet is not available here). The paper's
Table 1 reports on the AffectNet validation set: 8-class accuracy 61.93 %, CCC valence
0.594, arousal 0.549; this run writes the same metrics (``expr_acc``, ``ccc_valence``,
``ccc_arousal``) to ``final_metrics.json``. On this project's 2-core CPU one step of
this config takes tens of seconds: use a GPU/TPU.
"""

from configs import common


def get_config():
    c = common.base_config()
    c.model.backbone = "tf_efficientnet_b0"
    c.model.drop_rate = 0.2
    c.data.name = "affectnet"
    c.data.manual_dir = ""  # required: --config.data.manual_dir=/path/to/AffectNet
    c.data.image_size = 224
    c.data.builder_kwargs = dict(image_size=224, drop_non_class=True)  # authors' set
    c.data.train_split = "train"
    c.data.eval_split = "validation"
    c.batch_size = 48
    c.phase_order = ("head", "full")
    c.phases.head = dict(epochs=3, learning_rate=1e-3, trainable="head")
    c.phases.full.epochs = 6
    c.phases.full.learning_rate = 1e-4
    c.optimizer.name = "adam"
    c.optimizer.sam_rho = 0.05
    c.log_every_steps = 100
    c.checkpoint_every_steps = 1000
    return c
