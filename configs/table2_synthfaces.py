"""Paper 1, Table 2 in miniature: MTL heads on a backbone pre-trained on expressions + VA
(MT-EmotiEffNet) against one pre-trained on expressions only (EfficientNet-B0 [18]).

Each run pre-trains the quickstart backbone (``configs/quickstart.py``, in
``<workdir>/backbone``) at the run's seed, with ``pretrain.config.loss.tasks`` =
``va+expr`` (the paper's multi-task pre-training, eq. 1) or ``expr`` (cross-entropy only),
then extracts the frozen backbone's embedding + 10 logits and trains the three MLP heads
simultaneously on embeddings + logits (Table 2's rows "EfficientNet-B0, embeddings +
logits" 1.148 and "MT-EmotiEffNet, simultaneous, embeddings + logits" 1.211 on
Aff-Wild2), and reports P_MTL on the validation split at AU thresholds 0.5 (``P_MTL``)
and tuned (``tuned_P_MTL``). With ``expr`` the backbone's two VA outputs are never
trained; they stay in the 10 logits the heads read.

    python -m affectjax.sweep --config configs/table2_synthfaces.py --seeds 0,1,2 \\
        --grid pretrain.config.loss.tasks=va+expr,expr --workdir runs/sweeps/table2

One run: ``python train.py --config configs/table2_synthfaces.py
--config.pretrain.config.loss.tasks=expr --workdir runs/table2_expr``. The measured
table is in ``docs/emotieffnet.md``.
"""

import ml_collections

from configs import mtl_heads_synthfaces
from configs import quickstart


def get_config() -> ml_collections.ConfigDict:
    c = mtl_heads_synthfaces.get_config("simultaneous")
    c.model.va_input = "both"  # every head reads embeddings + logits, as Table 2's rows.
    c.tuning.expert = "none"  # no blend: Table 2 compares the heads alone.
    c.pretrain = ml_collections.ConfigDict(dict(enabled=True, config=quickstart.get_config()))
    c.pretrain.config.progress_bar = False
    return c
