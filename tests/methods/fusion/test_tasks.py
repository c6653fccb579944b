"""The fusion tasks' losses and metrics against float64 references (NumPy, sklearn, PyTorch)."""

import jax.numpy as jnp
import numpy as np
import pytest
import sklearn.metrics
import torch

from affectjax.methods.fusion import tasks


def _wacc(y, p):
    """WAcc = (TP N/P + TN) / (2N) of one column, as the paper writes it."""
    pos, neg = y == 1, y == 0
    tp, tn = np.sum(pos & (p == 1)), np.sum(neg & (p == 0))
    return (tp * neg.sum() / pos.sum() + tn) / (2 * neg.sum())


@pytest.fixture(scope="module")
def emotion_case():
    rng = np.random.default_rng(0)
    n, e = 57, 4
    y = (rng.random((n, e)) < [0.2, 0.3, 0.5, 0.1]).astype(np.int32)
    y[0] = 1  # every column has positives and negatives
    y[1] = 0
    y[5, 2] = -1  # a missing entry
    logits = rng.normal(size=(n, e)).astype(np.float32) + 0.8 * (2 * y - 1)
    valid = np.ones(n, bool)
    valid[-3:] = False  # padding rows of an evaluation batch
    return y, logits, valid


def test_emotion_wacc_and_f1_match_numpy(emotion_case):
    y, logits, valid = emotion_case
    half = 30  # two batches, merged
    stats = [tasks.eval_stats("emotion", jnp.asarray(logits[s]),
                              {"emotion": y[s], "valid": valid[s]})
             for s in (slice(0, half), slice(half, None))]
    out = tasks.eval_finalize("emotion", tasks.eval_merge(*stats),
                              emotion_names=("N", "H", "S", "A"))
    pred = (1 / (1 + np.exp(-logits.astype(np.float64))) > 0.5).astype(int)
    waccs, f1s = [], []
    for k, name in enumerate("NHSA"):
        keep = valid & (y[:, k] >= 0)
        waccs.append(_wacc(y[keep, k], pred[keep, k]))
        f1s.append(sklearn.metrics.f1_score(y[keep, k], pred[keep, k]))
        np.testing.assert_allclose(out[f"emotion/wacc/{name}"], waccs[-1], rtol=1e-6)
        np.testing.assert_allclose(out[f"emotion/f1/{name}"], f1s[-1], rtol=1e-6)
    np.testing.assert_allclose(out["emotion/avg_wacc"], np.mean(waccs), rtol=1e-6)
    np.testing.assert_allclose(out["emotion/avg_f1"], np.mean(f1s), rtol=1e-6)
    assert out["emotion/count"] == valid.sum() - (not valid[5])
    np.testing.assert_allclose(tasks.task_score("emotion", out),
                               (np.mean(waccs) + np.mean(f1s)) / 2, rtol=1e-6)


def test_emotion_loss_is_torch_bce_with_pos_weight(emotion_case):
    y, logits, _ = emotion_case
    keep = y >= 0
    pos_weight = (np.sum(keep & (y == 0), 0) / np.sum(y == 1, 0)).astype(np.float32)
    loss, present = tasks.task_loss("emotion", jnp.asarray(logits), {"emotion": y},
                                    pos_weight=pos_weight)
    ref = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight, dtype=torch.float64),
                                     reduction="none")(
        torch.tensor(logits, dtype=torch.float64),
        torch.tensor(np.maximum(y, 0), dtype=torch.float64))
    np.testing.assert_allclose(float(loss), ref.numpy()[keep].mean(), rtol=1e-5)
    assert bool(present)


def test_weak_labels_fill_missing_strong_ones_at_the_teachers_confidence():
    rng = np.random.default_rng(1)
    n = 12
    logits = rng.normal(size=(n, 2)).astype(np.float32)
    strong = np.where(np.arange(n) < 5, rng.integers(0, 2, n), -1).astype(np.int32)
    weak = rng.integers(0, 2, n).astype(np.int32)
    batch = {"sarcasm": strong, "weak_sarcasm": weak, "valid": np.ones(n, bool)}
    conf = 0.7
    loss, present = tasks.task_loss("sarcasm", jnp.asarray(logits), batch, weak_weight=conf)
    ce = torch.nn.functional.cross_entropy(torch.tensor(logits, dtype=torch.float64),
                                           torch.tensor(np.where(strong >= 0, strong, weak),
                                                        dtype=torch.long),
                                           reduction="none").numpy()
    w = np.where(strong >= 0, 1.0, conf)  # strong labels win and weigh 1
    np.testing.assert_allclose(float(loss), (w * ce).sum() / n, rtol=1e-5)
    assert bool(present)
    # Only weak labels: the mean loss times the confidence; none at all: absent.
    only_weak = dict(batch, sarcasm=np.full(n, -1, np.int32))
    loss, _ = tasks.task_loss("sarcasm", jnp.asarray(logits), only_weak, weak_weight=conf)
    weak_ce = torch.nn.functional.cross_entropy(torch.tensor(logits, dtype=torch.float64),
                                                torch.tensor(weak, dtype=torch.long)).item()
    np.testing.assert_allclose(float(loss), conf * weak_ce, rtol=1e-5)
    loss, present = tasks.task_loss("sarcasm", jnp.asarray(logits),
                                    {"sarcasm": np.full(n, -1, np.int32)})
    assert float(loss) == 0.0 and not bool(present)


def test_binary_task_accuracy_and_weighted_f1_match_sklearn():
    rng = np.random.default_rng(2)
    n = 41
    y = rng.integers(0, 2, n).astype(np.int32)
    y[3] = -1
    logits = rng.normal(size=(n, 2)).astype(np.float32)
    stats = tasks.eval_stats("sarcasm", jnp.asarray(logits),
                             {"sarcasm": y, "valid": np.ones(n, bool)})
    out = tasks.eval_finalize("sarcasm", stats)
    keep = y >= 0
    pred = logits.argmax(-1)
    assert out["sarcasm/count"] == keep.sum()
    np.testing.assert_allclose(out["sarcasm/acc"],
                               sklearn.metrics.accuracy_score(y[keep], pred[keep]), rtol=1e-9)
    np.testing.assert_allclose(out["sarcasm/f1"], sklearn.metrics.f1_score(
        y[keep], pred[keep], average="weighted"), rtol=1e-9)


def test_regression_sentiment_l1_mae_and_correlation():
    rng = np.random.default_rng(3)
    n = 33
    target = rng.uniform(-3, 3, n).astype(np.float32)
    binary = (target > 0).astype(np.int32)
    binary[:4] = -1  # unlabelled
    out_logits = (target + rng.normal(scale=0.8, size=n)).astype(np.float32)[:, None]
    batch = {"sentiment": target, "sentiment_binary": binary, "valid": np.ones(n, bool)}
    keep = binary >= 0
    loss, _ = tasks.task_loss("sentiment", jnp.asarray(out_logits), batch,
                              sentiment_loss="regression")
    p = out_logits[:, 0].astype(np.float64)
    np.testing.assert_allclose(float(loss), np.abs(p - target)[keep].mean(), rtol=1e-5)
    out = tasks.eval_finalize("sentiment", tasks.eval_stats(
        "sentiment", jnp.asarray(out_logits), batch, sentiment_loss="regression"))
    np.testing.assert_allclose(out["sentiment/mae"], np.abs(p - target)[keep].mean(), rtol=1e-4)
    np.testing.assert_allclose(out["sentiment/corr"],
                               np.corrcoef(p[keep], target[keep])[0, 1], rtol=1e-3)
    np.testing.assert_allclose(out["sentiment/acc"], np.mean((p[keep] > 0) == binary[keep]),
                               rtol=1e-9)
