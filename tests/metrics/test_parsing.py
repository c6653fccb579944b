"""Tests of the Helen parsing F-scores against numpy pixel counts."""

import numpy as np
import pytest

from affectjax import metrics


def ref_counts(pred, target, classes):
    """TP, FP, FN of the merged class set, float64 numpy."""
    t = np.isin(target, classes)
    p = np.isin(pred, classes)
    valid = target != -1
    return (np.sum(t & p & valid), np.sum(~t & p & valid), np.sum(t & ~p & valid))


def ref_f(tp, fp, fn):
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _maps(rng, n=3, size=12):
    target = rng.integers(0, 11, (n, size, size)).astype(np.int32)
    pred = np.where(rng.random(target.shape) < 0.6, target,
                    rng.integers(0, 11, target.shape)).astype(np.int32)
    target[rng.random(target.shape) < 0.05] = -1
    return pred, target


def test_per_class_groups_and_overall_match_numpy():
    pred, target = _maps(np.random.default_rng(0))
    got = metrics.parsing_fscore(target, pred)
    want = [ref_f(*ref_counts(pred, target, [c])) for c in range(11)]
    np.testing.assert_allclose(got["per_class"], want, rtol=1e-5)
    for name, members in metrics.HELEN_GROUPS.items():
        np.testing.assert_allclose(got["groups"][name],
                                   ref_f(*ref_counts(pred, target, list(members))),
                                   rtol=1e-5, err_msg=name)
    # Overall: TP, FP, FN summed over eyes, brows, nose and mouth-all.
    sums = np.sum([ref_counts(pred, target, list(metrics.HELEN_GROUPS[g]))
                   for g in ("eyes", "brows", "nose", "mouth_all")], axis=0)
    np.testing.assert_allclose(got["overall"], ref_f(*sums), rtol=1e-5)


def test_merged_groups_forgive_confusions_inside_the_group():
    target = np.array([[[7, 8, 9, 0]]], np.int32)
    pred = np.array([[[9, 7, 8, 0]]], np.int32)  # Lips and inner mouth swapped.
    got = metrics.parsing_fscore(target, pred)
    assert float(got["groups"]["mouth_all"]) == 1.0
    assert float(got["groups"]["upper_lip"]) == 0.0
    assert float(got["overall"]) == 1.0
    np.testing.assert_allclose(metrics.parsing_fscore(target, target)["per_class"],
                               [1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0])


def test_streaming_confusion_matrix_equals_one_shot(splits):
    pred, target = _maps(np.random.default_rng(1), n=7, size=8)
    batches = splits(7, seed=6)
    where = np.ones(7, bool)
    where[[s for s in batches if s.stop > s.start][-1]] = False
    cm = metrics.parsing_init()
    for s in batches:
        cm = metrics.parsing_update(cm, target[s], pred[s], where=where[s])
    got = metrics.parsing_finalize(cm)
    want = metrics.parsing_fscore(target, pred, where=where)
    np.testing.assert_allclose(got["per_class"], want["per_class"])
    np.testing.assert_allclose(got["overall"], want["overall"])
    for name in want["groups"]:
        np.testing.assert_allclose(got["groups"][name], want["groups"][name], err_msg=name)
    # The confusion-matrix family gives the same statistic.
    cm2 = metrics.confusion_init(11)
    for s in batches:
        cm2 = metrics.confusion_update(cm2, target[s], pred[s], where=where[s])
    np.testing.assert_array_equal(cm2, cm)
    halves = metrics.parsing_merge(
        metrics.parsing_update(metrics.parsing_init(), target[:3], pred[:3], where=where[:3]),
        metrics.parsing_update(metrics.parsing_init(), target[3:], pred[3:], where=where[3:]))
    np.testing.assert_array_equal(halves, cm)
    assert metrics.parsing_fscore_from_cm is metrics.parsing_finalize
    sliced = metrics.parsing_fscore(target[where], pred[where])
    np.testing.assert_allclose(got["overall"], sliced["overall"])


def test_custom_groups_and_errors():
    pred, target = _maps(np.random.default_rng(2))
    pred, target = pred % 3, np.where(target == -1, -1, target % 3)
    got = metrics.parsing_fscore(target, pred, 3, groups={"a": (1,), "b": (2,)},
                                 overall=("a", "b"))
    sums = np.sum([ref_counts(pred, target, [c]) for c in (1, 2)], axis=0)
    np.testing.assert_allclose(got["overall"], ref_f(*sums), rtol=1e-5)
    with pytest.raises(ValueError, match="groups: the default Helen groups"):
        metrics.parsing_fscore(target, pred, 3)
    with pytest.raises(KeyError, match=r"unknown overall group 'z'; choose one of \['a'\]"):
        metrics.parsing_fscore(target, pred, 3, groups={"a": (1,)}, overall=("z",))
    with pytest.raises(ValueError, match="overall: groups"):
        metrics.parsing_fscore(target, pred, 3, groups={"a": (1,), "b": (1, 2)},
                               overall=("a", "b"))
    with pytest.raises(ValueError, match="y_true: label 11"):
        metrics.parsing_fscore(np.full_like(target, 11), pred)
    with pytest.raises(ValueError, match="y_pred: label 12"):
        metrics.parsing_fscore(target, np.full_like(pred, 12))
    with pytest.raises(ValueError, match="y_pred: shape"):
        metrics.parsing_fscore(target, pred[:, :2])
    with pytest.raises(ValueError, match="y_true: expected rank 3"):
        metrics.parsing_fscore(target[0], pred[0])
