"""Learning from synthetic data, the ABAW4 LSD challenge layout (paper 1, Fig. 2, Table 8).

    python -m affectjax.convert mt_emotieffnet.pt --arch emotieffnet --head-order abaw \\
        --out runs/mt_emotieffnet
    python train.py --config configs/lsd_affwild2.py --workdir runs/lsd_affwild2 \\
        --config.lsd.train.root=/data/lsd/train \\
        --config.data.manual_dir=/data/affwild2

Over the paper's seeds (with the same --set flags for the data paths):

    python -m affectjax.sweep --config configs/lsd_affwild2.py --seeds 0,1,2 \\
        --set data.manual_dir=/path/to/data --workdir runs/sweeps/lsd_affwild2

Training set: the challenge's 277,251 synthetic 112x112 faces as a class-folder set
(``lsd.train.root/<expression>/*.jpg``; folder names that are emotion words, e.g.
``ANGER`` or ``happiness``, map automatically, otherwise give ``lsd.train.class_names``
{folder: ABAW name}), enlarged x2 (``lsd.super_resolution``; bicubic by default, the
authors used Real-ESRGAN x4plus at scale 2: register it as
`affectjax.methods.emotieffnet.super_resolution` explains) to the network's 224 px. Validation: the
Aff-Wild2 MTL validation frames (``affwild2_mtl`` builder, ``data.manual_dir``) with
Neutral and Other removed, as the paper's "val set from MTL". Pre-trained weights: the
authors' MT-EmotiEffNet converted with its head in ABAW order
(``lsd.pretrained_checkpoint``; the released head lists its expressions alphabetically,
Anger, Contempt, Disgust, ..., and ``--head-order abaw`` above reorders it to the ABAW
order the 6-class mapping reads), or a trainer run (``lsd.pretrained_workdir``, e.g. of
``configs/emotieffnet_affectnet.py``). Fine-tune: head 3 epochs at 1e-3, then all weights
6 epochs at 1e-4, SAM + Adam, batch 32.

Reference, paper Table 8 (MT-EmotiEffNet, fine-tuned on the SR training set; macro-F1):

| model                          | original LSD val | val set from MTL |
|--------------------------------|------------------|------------------|
| pre-trained                    | 0.6094           | 0.4257           |
| fine-tuned (head)              | 0.6198           | 0.4359           |
| pre-trained + fine-tuned (head)| 0.6450           | 0.4524           |
| fine-tuned (all)               | 0.6729           | 0.3654           |
| pre-trained + fine-tuned (all) | 0.6818           | 0.3970           |
"""

import ml_collections

from configs import common


def get_config() -> ml_collections.ConfigDict:
    c = common.base_config()
    c.method = "lsd"
    c.model.backbone = "tf_efficientnet_b0"
    c.data.name = "affwild2_mtl"
    c.data.manual_dir = ""  # the Aff-Wild2 MTL folder (see affectjax.data.readers)
    c.data.image_size = 224
    c.data.builder_kwargs = dict(image_size=224)
    c.data.eval_split = "validation"
    c.batch_size = 32
    c.eval_batch_size = 64
    c.phase_order = ("head", "full")
    c.phases = ml_collections.ConfigDict(dict(
        head=dict(epochs=3, learning_rate=1e-3, trainable="head"),
        full=dict(epochs=6, learning_rate=1e-4, trainable="all")))
    c.optimizer.sam_rho = 0.05
    c.lsd = ml_collections.ConfigDict(dict(
        pretrained_workdir="",
        pretrained_checkpoint="runs/mt_emotieffnet",
        train=dict(source="image_folder", root="", image_size=112, class_names={}),
        super_resolution="bicubic",
        sr_scale=2.0,
        scores="softmax",
        blend_grid=11))
    return c
