"""MT-EmotiEffNet MTL heads on Aff-Wild2 (ABAW4 MTL set), the paper's setting (paper 1, Sec. 3.2).

    python -m affectjax.convert MT_EMOTIEFFNET.pt --arch emotieffnet \\
        --head-order abaw --out pretrained/mt_b0
    python train.py --config configs/mtl_heads_affwild2.py --workdir runs/mtl_heads_affwild2 \\
        --config.data.manual_dir=/path/to/abaw4_mtl --config.features.checkpoint=pretrained/mt_b0

Over the paper's seeds (with the same --set flags for the data paths):

    python -m affectjax.sweep --config configs/mtl_heads_affwild2.py --seeds 0,1,2 \\
        --set data.manual_dir=/path/to/data --workdir runs/sweeps/mtl_heads_affwild2

The frozen MT-EmotiEffNet (EfficientNet-B0 pre-trained on AffectNet: the authors'
released weights converted by ``python -m affectjax.convert``, or a run of
``configs/emotieffnet_affectnet.py`` via ``--config.features.workdir=runs/...``) gives per
face its 1280-d embedding and 10 logits; the authors' heads are single Dense layers (no
hidden layer): VA (tanh) on the logits, EXPR (softmax) and AU (sigmoid) on embedding +
logits + the VA output (Fig. 1), trained separately, then per-AU thresholds tuned on the
validation split and the heads' expression scores blended with the backbone's own
(``tuning.expert``; the paper blends an OpenFace-AU expert instead; this expert needs the
head in ABAW expression order, hence ``--head-order abaw``: the released 8-class head
lists its expressions alphabetically, Anger, Contempt, Disgust, ..., and the conversion
reorders them to ABAW order with Contempt as Other).

Data: the ABAW4 MTL set (s-Aff-Wild2, licensed; ``data.name = "affwild2_mtl"``) in its
original layout under ``data.manual_dir``: ``training_set_annotations.txt``,
``validation_set_annotations.txt`` and ``cropped_aligned/<video>/<frame>.jpg``. The first
run stores it as a TFDS data set in ``data.data_dir`` (224 x 224) and caches the features
in ``<workdir>/features``; ``configs/mtl_heads_affwild2.py:simultaneous`` trains the three
heads at once (the paper's Table 2 "simultaneous" rows).

Result: not measured by this project (Aff-Wild2 is not available here). What to expect,
the paper's Tables 2 and 6 on the s-Aff-Wild2 validation set (``report.md`` has the same
rows): separate heads, "our model", AU thresholds 0.5: P_MTL 1.276 (P_VA 0.447, P_EXPR
0.335, P_AU 0.494); with tuned AU thresholds P_MTL 1.304 (P_AU 0.522); simultaneous
heads on embeddings + logits: P_MTL 1.211 (0.414 / 0.334 / 0.463). ``report.md`` also
gives the chance level computed from the validation labels. Extraction is one forward
pass of B0 per face (142,333 training faces, paper Sec. 2.1): use a GPU; the heads then
train on the cached features in minutes on a CPU.
"""

import ml_collections

from configs import emotieffnet_affectnet
from configs import mtl_heads_synthfaces


def get_config(arg: str = "separate") -> ml_collections.ConfigDict:
    c = mtl_heads_synthfaces.get_config(arg)
    c.backbone = emotieffnet_affectnet.get_config().model
    c.data.name = "affwild2_mtl"
    c.data.manual_dir = ""  # required: --config.data.manual_dir=/path/to/abaw4_mtl
    c.data.image_size = 224
    c.data.builder_kwargs = ml_collections.ConfigDict(dict(image_size=224))
    c.data.train_split = "train"
    c.data.eval_split = "validation"
    c.features.batch_size = 128
    # required: a converted MT-EmotiEffNet (python -m affectjax.convert), or features.workdir.
    c.features.checkpoint = ""
    c.model.hidden = ()  # the authors' heads: one Dense layer each.
    c.model.va_feeds_heads = True  # Fig. 1: the VA output also feeds EXPR and AU.
    c.batch_size = 256
    phases = {"separate": "separate_phases", "simultaneous": "simultaneous_phases"}
    from affectjax.methods.emotieffnet import mtl_heads  # pylint: disable=import-outside-toplevel
    c.phase_order, c.phases = getattr(mtl_heads, phases[arg])(epochs=10, learning_rate=1e-3)
    return c
