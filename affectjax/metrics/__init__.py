"""Evaluation metrics, one-shot and streaming (sufficient statistics).

One argument order for all: sklearn's ``(y_true, y_pred)`` (the ABAW score takes
each task's pair in that order). A one-shot metric returns a scalar, or the fixed
structure its docstring gives (one value per column, or a dict of named scores);
per-item values have their own function (`nme_per_item`).

Every metric also has a streaming form over one family of sufficient statistics:
`*_init` creates empty statistics (a pytree), `*_update(stats, y_true, y_pred, ...)`
adds a batch (jnp code, runs under `jax.jit`), `*_merge` combines two sets and
`*_finalize` gives the scores once at the end (a single score also has its own
`*_from_cm` / `*_from_stats` function). Batch-wise accumulation equals the one-shot
computation on the concatenated data.

=========================================  ====================  ========================
one-shot                                   statistics            finalize
=========================================  ====================  ========================
ccc                                        ccc_*                 ccc_finalize
confusion_matrix, accuracy, f1_per_class,  confusion_*           confusion_finalize,
f1_macro, cct_score                                              *_from_cm
binary_f1, weighted_accuracy, au_f1        binary_*              binary_finalize,
                                                                 *_from_stats
abaw_mtl_score                             abaw_*                abaw_finalize
nme, nme_per_item, failure_rate            landmark_*            landmark_finalize
nme_per_landmark,                          landmark_point_*      landmark_point_finalize
failure_rate_per_landmark
parsing_fscore                             parsing_*             parsing_finalize
=========================================  ====================  ========================
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
from affectjax.metrics.binary import binary_finalize
from affectjax.metrics.binary import binary_init
from affectjax.metrics.binary import binary_merge
from affectjax.metrics.binary import binary_update
from affectjax.metrics.binary import weighted_accuracy
from affectjax.metrics.binary import weighted_accuracy_from_stats
from affectjax.metrics.classification import accuracy
from affectjax.metrics.classification import accuracy_from_cm
from affectjax.metrics.classification import cct_score
from affectjax.metrics.classification import cct_score_from_cm
from affectjax.metrics.classification import confusion_finalize
from affectjax.metrics.classification import confusion_init
from affectjax.metrics.classification import confusion_matrix
from affectjax.metrics.classification import confusion_merge
from affectjax.metrics.classification import confusion_update
from affectjax.metrics.classification import f1_macro
from affectjax.metrics.classification import f1_macro_from_cm
from affectjax.metrics.classification import f1_per_class
from affectjax.metrics.classification import f1_per_class_from_cm
from affectjax.metrics.landmarks import LandmarkPointStats
from affectjax.metrics.landmarks import LandmarkStats
from affectjax.metrics.landmarks import failure_rate
from affectjax.metrics.landmarks import failure_rate_per_landmark
from affectjax.metrics.landmarks import landmark_finalize
from affectjax.metrics.landmarks import landmark_init
from affectjax.metrics.landmarks import landmark_merge
from affectjax.metrics.landmarks import landmark_point_finalize
from affectjax.metrics.landmarks import landmark_point_init
from affectjax.metrics.landmarks import landmark_point_merge
from affectjax.metrics.landmarks import landmark_point_update
from affectjax.metrics.landmarks import landmark_update
from affectjax.metrics.landmarks import nme
from affectjax.metrics.landmarks import nme_per_item
from affectjax.metrics.landmarks import nme_per_landmark
from affectjax.metrics.parsing import HELEN_CLASSES
from affectjax.metrics.parsing import HELEN_GROUPS
from affectjax.metrics.parsing import HELEN_OVERALL
from affectjax.metrics.parsing import parsing_fscore
from affectjax.metrics.parsing import parsing_finalize
from affectjax.metrics.parsing import parsing_fscore_from_cm
from affectjax.metrics.parsing import parsing_init
from affectjax.metrics.parsing import parsing_merge
from affectjax.metrics.parsing import parsing_update
from affectjax.metrics.regression import CCCStats
from affectjax.metrics.regression import ccc
from affectjax.metrics.regression import ccc_finalize
from affectjax.metrics.regression import ccc_init
from affectjax.metrics.regression import ccc_merge
from affectjax.metrics.regression import ccc_update
