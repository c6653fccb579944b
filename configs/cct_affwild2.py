"""CCT on Aff-Wild2's expression track, the paper's setting (Gera & Balasubramanian, Sec. 4-5).

    python train.py --config configs/cct_affectnet_pretrain.py --workdir runs/cct_affectnet \\
        --config.data.manual_dir=/path/to/AffectNet --config.init_from=pretrained/resnet18
    python train.py --config configs/cct_affwild2.py --workdir runs/cct_affwild2 \\
        --config.data.manual_dir=/path/to/Aff-Wild2 --config.init_from=runs/cct_affectnet

Three ResNet-18 (``cct.num_networks``) start from one AffectNet-trained network (the
first command, `configs/cct_affectnet_pretrain.py`; ``init_from`` also takes a converted
checkpoint, e.g. a RAF-DB-trained ResNet-18, Table 5) with a classifier of their own, and
are co-trained on the 7 expressions of Aff-Wild2's expression track (``data.name =
"affwild2_expr"``: ``annotations/EXPR_Set/{Train_Set,Validation_Set}/<video>.txt`` and
``cropped_aligned/<video>/<frame:05d>.jpg``; frames coded -1 are left out), 224 px,
batch 256, Adam with backbone 1e-3 and classifier 1e-2, x0.95 per epoch, loss eqs. 1-3
with the ramp of eq. 4 (lambda_max 0.9, beta 4 as the paper's best; the authors' code:
beta 0.65, ``--config.cct.beta=0.65 --config.cct.clamp=False --config.cct.scale=0.33``),
the authors' augmentation. ``--config.data.oversample=expr`` is the oversampling of
Table 6; ``--config.cct.consensus=False`` the CE-only row of Table 7.

Result: not measured by this project (Aff-Wild2 is licensed and not available here). The
paper reports on the validation set (Table 3, AffectNet start): F1 0.404, accuracy 0.638,
overall 0.4814 (``f1``, ``acc`` and ``cct_score`` of ``final_metrics.json``). The epoch
count is not in the paper; 10 here.
"""

from configs import cct_affectnet_pretrain


def get_config():
    c = cct_affectnet_pretrain.get_config()
    c.model.num_classes = 7
    c.cct.update(num_networks=3, consensus=True, ramp_epochs=9.0)  # e_r = 0.9 of 10 epochs
    c.data.name = "affwild2_expr"
    c.data.manual_dir = ""  # required: --config.data.manual_dir=/path/to/Aff-Wild2
    c.data.builder_kwargs = dict(image_size=224)
    return c
