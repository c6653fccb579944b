"""Evaluation metrics, one-shot and streaming (sufficient statistics).

Every metric has a one-shot function and a streaming form: `*_init` creates
empty statistics (a pytree), `*_update` adds a batch (jnp code, runs under
`jax.jit`), `*_merge` combines two sets and `*_finalize` / `*_from_*` gives
the score once at the end. Batch-wise accumulation equals the one-shot
computation on the concatenated data.
"""

from affectjax.metrics.abaw import AbawStats
from affectjax.metrics.abaw import abaw_finalize
from affectjax.metrics.abaw import abaw_init
from affectjax.metrics.abaw import abaw_merge
from affectjax.metrics.abaw import abaw_mtl_score
from affectjax.metrics.abaw import abaw_update
from affectjax.metrics.binary import BinaryStats
from affectjax.metrics.binary import au_f1
from affectjax.metrics.binary import au_f1_from_stats
from affectjax.metrics.binary import binary_counts
from affectjax.metrics.binary import binary_f1
from affectjax.metrics.binary import binary_f1_from_stats
from affectjax.metrics.binary import binary_init
from affectjax.metrics.binary import binary_merge
from affectjax.metrics.binary import binary_update
from affectjax.metrics.binary import weighted_accuracy
from affectjax.metrics.binary import weighted_accuracy_from_stats
from affectjax.metrics.classification import accuracy
from affectjax.metrics.classification import accuracy_from_cm
from affectjax.metrics.classification import cct_score
from affectjax.metrics.classification import cct_score_from_cm
from affectjax.metrics.classification import confusion_init
from affectjax.metrics.classification import confusion_matrix
from affectjax.metrics.classification import confusion_merge
from affectjax.metrics.classification import confusion_update
from affectjax.metrics.classification import f1_macro
from affectjax.metrics.classification import f1_macro_from_cm
from affectjax.metrics.classification import f1_per_class
from affectjax.metrics.classification import f1_per_class_from_cm
from affectjax.metrics.landmarks import LandmarkStats
from affectjax.metrics.landmarks import failure_rate
from affectjax.metrics.landmarks import landmark_finalize
from affectjax.metrics.landmarks import landmark_init
from affectjax.metrics.landmarks import landmark_merge
from affectjax.metrics.landmarks import landmark_update
from affectjax.metrics.landmarks import nme
from affectjax.metrics.parsing import HELEN_CLASSES
from affectjax.metrics.parsing import HELEN_GROUPS
from affectjax.metrics.parsing import HELEN_OVERALL
from affectjax.metrics.parsing import parsing_fscore
from affectjax.metrics.parsing import parsing_fscore_from_cm
from affectjax.metrics.regression import CCCStats
from affectjax.metrics.regression import ccc
from affectjax.metrics.regression import ccc_finalize
from affectjax.metrics.regression import ccc_init
from affectjax.metrics.regression import ccc_merge
from affectjax.metrics.regression import ccc_update
