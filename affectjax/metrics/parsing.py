"""Face-parsing F-scores (Helen protocol, iFAN paper Sec. 4.1.3 and Table 2).

Helen has 11 classes, in the order of Smith et al. (the iFAN paper's [21]):

    0 background, 1 face skin, 2 left brow, 3 right brow, 4 left eye,
    5 right eye, 6 nose, 7 upper lip, 8 inner mouth, 9 lower lip, 10 hair.

The F-score of a class (or of a group of classes merged into one, e.g. both
eyes) is 2 TP / (2 TP + FP + FN) over pixels, pooled over the whole test set
(not averaged per image). The iFAN Table 2 columns are the groups of
`HELEN_GROUPS`: eyes (4, 5), brows (2, 3), nose, inner mouth, upper lip,
lower lip, mouth-all (7, 8, 9), face skin, hair, background.

"Overall" follows the protocol of [21] and its successors: one F-score over
the facial components eyes, brows, nose and mouth-all, with TP, FP and FN
summed over these four merged groups (a lip pixel predicted as inner mouth
counts as correct for mouth-all). Background, face skin and hair are NOT in
the overall score.

The streaming statistic is the pixel confusion matrix (per-class TP/FP/FN
are not enough once classes are merged into groups): `parsing_init()`, then
`parsing_update` per batch (`parsing_merge` adds two matrices), then
`parsing_finalize` once.
"""

from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from affectjax import registry
from affectjax.metrics import _checks
from affectjax.metrics import classification

HELEN_CLASSES = ("background", "face_skin", "left_brow", "right_brow",
                 "left_eye", "right_eye", "nose", "upper_lip", "inner_mouth",
                 "lower_lip", "hair")

HELEN_GROUPS: dict[str, tuple[int, ...]] = {
    "eyes": (4, 5),
    "brows": (2, 3),
    "nose": (6,),
    "inner_mouth": (8,),
    "upper_lip": (7,),
    "lower_lip": (9,),
    "mouth_all": (7, 8, 9),
    "face_skin": (1,),
    "hair": (10,),
    "background": (0,),
}

HELEN_OVERALL: tuple[str, ...] = ("eyes", "brows", "nose", "mouth_all")


@jax.jit
def _group_fscores(cm: jax.Array, members: jax.Array,
                   pooled: jax.Array) -> tuple[jax.Array, jax.Array]:
    """F-scores of merged groups and of the pooled overall set (traced code).

    Args:
      cm: (C, C) confusion matrix.
      members: (G, C) 0/1 membership of each class in each group.
      pooled: (G,) 0/1, the groups pooled into the overall score.
    """
    members = members.astype(cm.dtype)  # Integer counts stay exact.
    tp = jnp.einsum("gi,ij,gj->g", members, cm, members)
    fp = members @ jnp.sum(cm, axis=0) - tp
    fn = members @ jnp.sum(cm, axis=1) - tp
    w = pooled.astype(cm.dtype)
    return _fscore(tp, fp, fn), _fscore(w @ tp, w @ fp, w @ fn)


def _fscore(tp: jax.Array, fp: jax.Array, fn: jax.Array) -> jax.Array:
    denom = 2 * tp + fp + fn
    return jnp.where(denom > 0, 2 * tp / jnp.maximum(denom, 1), 0.0)


def parsing_finalize(
        cm: jax.Array, *,
        groups: Mapping[str, Sequence[int]] | None = None,
        overall: Sequence[str] | None = None) -> dict[str, Any]:
    """F-scores from a pixel confusion matrix (rows true, columns predicted).

    Args:
      cm: (C, C) confusion matrix.
      groups: named groups of class indices scored as one class; default
        `HELEN_GROUPS` (requires C = 11).
      overall: names of the disjoint groups pooled into the overall score;
        default `HELEN_OVERALL`.

    Returns:
      {"per_class": (C,) F-scores, "groups": {name: F-score}, "overall": F-score}.
    """
    c = cm.shape[0]
    if groups is None:
        if c != len(HELEN_CLASSES):
            raise ValueError(
                f"groups: the default Helen groups need 11 classes, got {c}; "
                "pass groups= and overall=")
        groups = HELEN_GROUPS
    if overall is None:
        overall = HELEN_OVERALL
    for name, members in groups.items():
        if not members or any(not 0 <= int(k) < c for k in members):
            raise ValueError(f"groups: group {name!r} has classes {members} outside [0, {c})")
    for name in overall:
        registry.lookup(groups, name, "overall group")
    pooled = [k for name in overall for k in groups[name]]
    if len(set(pooled)) != len(pooled):
        raise ValueError(f"overall: groups {tuple(overall)} share classes")
    names = list(groups)
    members = np.zeros((len(names), c), np.int32)
    for g, name in enumerate(names):
        members[g, list(groups[name])] = 1
    in_overall = np.array([name in overall for name in names], np.int32)
    per_group, total = _group_fscores(cm, members, in_overall)
    return {"per_class": classification.f1_per_class_from_cm(cm),
            "groups": {name: per_group[g] for g, name in enumerate(names)},
            "overall": total}


parsing_fscore_from_cm = parsing_finalize
"""The earlier name of `parsing_finalize`, kept for existing callers."""


def parsing_init(num_classes: int = len(HELEN_CLASSES)) -> jax.Array:
    """An all-zero (num_classes, num_classes) int32 pixel confusion matrix."""
    return classification.confusion_init(num_classes)


def parsing_update(cm: jax.Array, y_true: Any, y_pred: Any, *,
                   where: Any = None) -> jax.Array:
    """Adds one batch of label maps to the pixel confusion matrix.

    Args:
      cm: (C, C) matrix from `parsing_init` or an earlier update.
      y_true: (N, H, W) true class per pixel; -1 marks unlabelled pixels.
      y_pred: (N, H, W) predicted class per pixel.
      where: optional mask, (N, H, W) per pixel or (N,) per image.

    Returns:
      The updated (C, C) matrix.
    """
    num_classes = int(jnp.shape(cm)[0])
    y_true = _checks.as_array(y_true, "y_true")
    y_pred = _checks.as_array(y_pred, "y_pred")
    _checks.check_rank(y_true, (3,), "y_true")
    _checks.check_same_shape(y_true, y_pred, "y_true", "y_pred")
    _checks.check_labels(y_true, num_classes, "y_true")
    where = _checks.check_mask(where, y_true)
    _checks.check_labels(y_pred, num_classes, "y_pred", allow_missing=False,
                         only=_checks.host_mask(where, y_true))
    return classification.confusion_update(cm, y_true, y_pred, where=where)


def parsing_merge(a: jax.Array, b: jax.Array) -> jax.Array:
    """Merges two pixel confusion matrices (their sum)."""
    return classification.confusion_merge(a, b)


def parsing_fscore(y_true: Any, y_pred: Any, num_classes: int = 11, *,
                   where: Any = None,
                   groups: Mapping[str, Sequence[int]] | None = None,
                   overall: Sequence[str] | None = None) -> dict[str, Any]:
    """Face-parsing F-scores per class, per group and overall (Helen protocol).

    Args:
      y_true: (N, H, W) true class per pixel; -1 marks unlabelled pixels.
      y_pred: (N, H, W) predicted class per pixel.
      num_classes: number of classes (11 for Helen).
      where: optional mask, (N, H, W) per pixel or (N,) per image.
      groups, overall: see `parsing_finalize`.

    Returns:
      {"per_class": (C,), "groups": {name: scalar}, "overall": scalar}.
    """
    cm = parsing_update(parsing_init(num_classes), y_true, y_pred, where=where)
    return parsing_finalize(cm, groups=groups, overall=overall)
