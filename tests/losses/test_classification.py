"""Cross-entropy and BCE losses against float64 NumPy and PyTorch references."""

import jax
import numpy as np
import pytest
import torch
from jax.test_util import check_grads

from affectjax import losses


def ref_log_softmax(logits):
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def random_batch(seed, batch=12, classes=5, missing=True):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(batch, classes)).astype(np.float32)
    labels = rng.integers(0, classes, size=batch).astype(np.int32)
    if missing:
        labels[::4] = -1
    return logits, labels


def test_class_balanced_weights():
    counts = np.array([120, 30, 0, 60])
    got = np.asarray(losses.class_balanced_weights(counts))
    np.testing.assert_allclose(got, [1.0, 4.0, 0.0, 2.0])
    with pytest.raises(ValueError, match="counts must be non-negative"):
        losses.class_balanced_weights([3, -1])
    with pytest.raises(ValueError, match="counts must have rank 1"):
        losses.class_balanced_weights([[3, 1]])


def test_softmax_cross_entropy_matches_numpy():
    logits, labels = random_batch(0)
    got = np.asarray(losses.softmax_cross_entropy(logits, labels))
    log_p = ref_log_softmax(logits)
    want = np.where(labels >= 0, -log_p[np.arange(12), np.maximum(labels, 0)], 0.0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # Rank-3 inputs: per-example and unreduced.
    got3 = losses.softmax_cross_entropy(logits.reshape(3, 4, 5), labels.reshape(3, 4))
    np.testing.assert_allclose(np.asarray(got3).reshape(-1), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("use_weights", [False, True])
def test_weighted_cross_entropy_matches_torch(use_weights):
    logits, labels = random_batch(1)
    weights = np.array([0.5, 2.0, 1.0, 3.0, 1.5], np.float32) if use_weights else None
    got = losses.weighted_cross_entropy(logits, labels, class_weights=weights)
    want = torch.nn.functional.cross_entropy(
        torch.tensor(logits, dtype=torch.float64),
        torch.tensor(labels, dtype=torch.long),
        weight=None if weights is None else torch.tensor(weights, dtype=torch.float64),
        ignore_index=-1,
    )
    np.testing.assert_allclose(got, want.item(), rtol=1e-5)


def test_weighted_cross_entropy_count_and_where():
    logits, labels = random_batch(2)
    weights = np.array([0.5, 2.0, 1.0, 3.0, 1.5], np.float32)
    where = np.arange(12) % 3 != 1
    valid = (labels >= 0) & where
    ce = -ref_log_softmax(logits)[np.arange(12), np.maximum(labels, 0)]
    w = weights[np.maximum(labels, 0)]
    got = losses.weighted_cross_entropy(
        logits, labels, class_weights=weights, where=where, normalize="count"
    )
    np.testing.assert_allclose(got, (w * ce)[valid].sum() / valid.sum(), rtol=1e-5)
    got = losses.weighted_cross_entropy(logits, labels, class_weights=weights, where=where)
    np.testing.assert_allclose(got, (w * ce)[valid].sum() / w[valid].sum(), rtol=1e-5)
    # where= equals slicing.
    np.testing.assert_allclose(
        got, losses.weighted_cross_entropy(logits[where], labels[where], class_weights=weights),
        rtol=1e-6,
    )
    with pytest.raises(ValueError, match="normalize must be one of"):
        losses.weighted_cross_entropy(logits, labels, normalize="mean")


@pytest.mark.parametrize("use_neg", [False, True])
def test_sigmoid_bce_matches_torch(use_neg):
    rng = np.random.default_rng(3)
    logits = rng.normal(scale=3.0, size=(10, 4)).astype(np.float32)
    labels = rng.integers(0, 2, size=(10, 4)).astype(np.int32)
    pos_weight = np.array([0.5, 1.0, 3.0, 2.0], np.float32)
    if not use_neg:
        got = losses.sigmoid_binary_cross_entropy(logits, labels, pos_weight=pos_weight)
        want = torch.nn.BCEWithLogitsLoss(
            pos_weight=torch.tensor(pos_weight, dtype=torch.float64)
        )(torch.tensor(logits, dtype=torch.float64), torch.tensor(labels, dtype=torch.float64))
        np.testing.assert_allclose(got, want.item(), rtol=1e-5)
        return
    labels[::3, 1] = -1
    where = np.arange(10) != 4
    neg_weight = np.array([2.0, 0.5, 1.0, 0.25], np.float32)
    got = losses.sigmoid_binary_cross_entropy(
        logits, labels, pos_weight=pos_weight, neg_weight=neg_weight, where=where[:, None]
    )
    x = logits.astype(np.float64)
    log_sig, log_one_minus = -np.logaddexp(0, -x), -np.logaddexp(0, x)
    per = -(pos_weight * (labels == 1) * log_sig + neg_weight * (labels == 0) * log_one_minus)
    valid = (labels >= 0) & where[:, None]
    np.testing.assert_allclose(got, per[valid].mean(), rtol=1e-5)


def test_balanced_weights_match_counts_and_sklearn():
    from sklearn.utils.class_weight import compute_class_weight

    rng = np.random.default_rng(4)
    labels = (rng.random((40, 3)) < [0.1, 0.5, 0.8]).astype(np.int32)
    labels[::5, 0] = -1
    pos_w = np.asarray(losses.balanced_pos_weight(labels))
    neg_w, pos_w2 = map(np.asarray, losses.sklearn_balanced_weights(labels))
    for k in range(3):
        column = labels[:, k][labels[:, k] >= 0]
        assert pos_w[k] == pytest.approx((column == 0).sum() / (column == 1).sum(), rel=1e-6)
        sk = compute_class_weight("balanced", classes=np.array([0, 1]), y=column)
        np.testing.assert_allclose([neg_w[k], pos_w2[k]], sk, rtol=1e-6)
    only_neg = np.zeros((5, 1), np.int32)
    assert float(losses.balanced_pos_weight(only_neg)[0]) == 1.0
    assert float(losses.sklearn_balanced_weights(only_neg)[1][0]) == 1.0


def test_jit_vmap_grad():
    logits, labels = random_batch(5, batch=8, classes=4)
    weights = np.array([1.0, 2.0, 0.5, 4.0], np.float32)
    f = lambda z, y: losses.weighted_cross_entropy(z, y, class_weights=weights)
    np.testing.assert_allclose(jax.jit(f)(logits, labels), f(logits, labels), rtol=1e-6)
    batched = jax.vmap(f)(logits.reshape(2, 4, 4), labels.reshape(2, 4))
    np.testing.assert_allclose(
        batched, [f(logits[:4], labels[:4]), f(logits[4:], labels[4:])], rtol=1e-6
    )
    bce_labels = (logits > 0).astype(np.int32)
    bce = jax.vmap(lambda z, y: losses.sigmoid_binary_cross_entropy(z, y))(logits, bce_labels)
    assert bce.shape == (8,)
    with jax.enable_x64(True):
        z64 = logits.astype(np.float64)

        def all_forms(z):
            return (
                losses.weighted_cross_entropy(z, labels, class_weights=weights)
                + losses.softmax_cross_entropy(z, labels).sum()
                + losses.sigmoid_binary_cross_entropy(z, bce_labels, pos_weight=weights)
            )

        check_grads(jax.jit(all_forms), (z64,), order=1)


def test_degenerate_inputs():
    logits = np.zeros((6, 3), np.float32)  # constant predictions
    one_class = np.zeros(6, np.int32)
    missing = np.full(6, -1, np.int32)

    def value_and_grads(labels, where):
        def f(z):
            return losses.weighted_cross_entropy(
                z, labels, class_weights=np.array([1.0, 2.0, 3.0], np.float32), where=where
            ) + losses.sigmoid_binary_cross_entropy(
                z, np.zeros((6, 3), np.int32), where=where[:, None]
            )

        return jax.jit(jax.value_and_grad(f))(logits)

    for labels, where in [(one_class, np.ones(6, bool)), (missing, np.ones(6, bool)),
                          (one_class, np.zeros(6, bool))]:
        value, grad = value_and_grads(labels, where)
        assert np.isfinite(value) and np.isfinite(grad).all()
    value, grad = value_and_grads(one_class, np.zeros(6, bool))
    assert float(value) == 0.0 and not np.asarray(grad).any()
    # Zero total class weight gives 0, not NaN.
    zero_weight = losses.weighted_cross_entropy(
        logits, one_class, class_weights=np.array([0.0, 1.0, 1.0], np.float32)
    )
    assert float(zero_weight) == 0.0


def test_bad_inputs_name_the_argument():
    logits, labels = random_batch(6)
    with pytest.raises(TypeError, match="logits must be a floating"):
        losses.softmax_cross_entropy(labels[:, None], labels)
    with pytest.raises(TypeError, match="labels must be an integer"):
        losses.weighted_cross_entropy(logits, labels.astype(np.float32))
    with pytest.raises(ValueError, match="labels shape"):
        losses.weighted_cross_entropy(logits, labels[:5])
    with pytest.raises(ValueError, match="labels must be in"):
        losses.softmax_cross_entropy(logits, np.full(12, 5, np.int32))
    with pytest.raises(ValueError, match="class_weights must have shape"):
        losses.weighted_cross_entropy(logits, labels, class_weights=np.ones(3, np.float32))
    with pytest.raises(ValueError, match="where"):
        losses.weighted_cross_entropy(logits, labels, where=np.ones(5, bool))
    with pytest.raises(ValueError, match="labels shape"):
        losses.sigmoid_binary_cross_entropy(logits, labels)
    with pytest.raises(TypeError, match="labels must be an integer"):
        losses.sigmoid_binary_cross_entropy(logits, (logits > 0).astype(np.float32))
    with pytest.raises(ValueError, match="labels must be 0, 1 or -1"):
        losses.sigmoid_binary_cross_entropy(logits, np.full(logits.shape, 2, np.int32))
    with pytest.raises(ValueError, match="pos_weight must have shape"):
        losses.sigmoid_binary_cross_entropy(
            logits, (logits > 0).astype(np.int32), pos_weight=np.ones(2, np.float32)
        )
    # Under jit the label values are unknown: out-of-range labels give NaN, never a
    # silently wrong number.
    bad = jax.jit(losses.weighted_cross_entropy)(logits, np.full(12, 7, np.int32))
    assert np.isnan(bad)
