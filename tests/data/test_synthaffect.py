"""Tests for SynthAffect: determinism, shapes, label masking, and what the cues make learnable."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from affectjax.data.synthaffect import DIMS, VARIANTS, SynthAffect


def _stack(src):
    examples = [src[i] for i in range(len(src))]
    return {k: np.stack([e[k] for e in examples]) for k in examples[0]}


def _probe(train, test, modalities, label, pool=np.mean):
    features = lambda d: np.concatenate([pool(d[m], axis=1) for m in modalities], axis=1)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    clf.fit(features(train), train[label])
    return balanced_accuracy_score(test[label], clf.predict(features(test)))


def test_deterministic_per_seed_variant_split_index():
    a, b = SynthAffect("mosei", "train", num_examples=5), SynthAffect("mosei", "train")
    for k in a[3]:
        np.testing.assert_array_equal(a[3][k], b[3][k])
    assert not np.array_equal(a[3]["text"], a[4]["text"])
    assert not np.array_equal(a[3]["text"], SynthAffect("mosei", "test")[3]["text"])
    assert not np.array_equal(a[3]["text"], SynthAffect("mosei", "train", seed=1)[3]["text"])


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_shapes_dtypes_and_observed_labels(variant):
    src = SynthAffect(variant, "validation", seq_len=20)
    assert len(src) == VARIANTS[variant]["sizes"]["validation"]
    ex = src[0]
    for m, d in DIMS.items():
        assert ex[m].shape == (20, d) and ex[m].dtype == np.float32
        assert np.isfinite(ex[m]).all()
    e = len(VARIANTS[variant]["emotions"])
    assert ex["emotion"].shape == (e,) and ex["emotion"].dtype == np.int32
    assert ex["sentiment"].dtype == np.float32 and ex["sarcasm"].dtype == np.int32
    tasks = VARIANTS[variant]["tasks"]
    labels = _stack(SynthAffect(variant, "train", num_examples=200, seq_len=20))
    if "emotion" in tasks:
        assert set(np.unique(labels["emotion"])) <= {0, 1}
    else:
        assert (labels["emotion"] == -1).all()
    if "sentiment" in tasks:
        assert (np.abs(labels["sentiment"]) <= 3).all() and labels["sentiment"].std() > 0.5
        np.testing.assert_array_equal(labels["sentiment_binary"], labels["sentiment"] >= 0)
    else:
        assert (labels["sentiment_binary"] == -1).all() and (labels["sentiment"] == 0).all()
    assert ((labels["sarcasm"] == -1).all()) != ("sarcasm" in tasks)


def test_iemocap_single_label_mustard_balanced_and_observe_all():
    iemo = _stack(SynthAffect("iemocap", "train", num_examples=300))
    np.testing.assert_array_equal(iemo["emotion"].sum(1), 1)
    must = _stack(SynthAffect("mustard", "train", num_examples=400))
    assert 0.4 < must["sarcasm"].mean() < 0.6
    full = SynthAffect("mustard", "train", num_examples=400, observe_all=True)[0]
    assert full["emotion"].min() >= 0 and full["sentiment_binary"] >= 0


def test_zero_padding_at_the_start():
    ex = SynthAffect("mosei", "train", seq_len=40)[7]
    nonzero = np.abs(ex["audio"]).sum(1) > 0
    first = int(np.argmax(nonzero))
    assert 20 <= 40 - first <= 40 and nonzero[first:].all() and not nonzero[:first].any()


def test_sarcasm_needs_fusion():
    train = _stack(SynthAffect("mustard", "train", num_examples=600))
    test = _stack(SynthAffect("mustard", "test", num_examples=400))
    single = {m: _probe(train, test, [m], "sarcasm") for m in DIMS}
    fused = _probe(train, test, list(DIMS), "sarcasm")
    assert max(single.values()) < 0.63, single
    assert fused > 0.78 and fused - max(single.values()) > 0.2, (fused, single)


def test_max_pooling_catches_the_burst_cue():
    # Fear shares its valence/arousal with Anger and Disgust: in the visual stream it shows
    # mainly as a 3-step burst, which max-pooling keeps and averaging dilutes.
    kw = dict(observe_all=True)
    train = _stack(SynthAffect("mosei", "train", num_examples=800, **kw))
    test = _stack(SynthAffect("mosei", "test", num_examples=500, **kw))
    fear = VARIANTS["mosei"]["emotions"].index("Fear")
    for d in (train, test):
        d["fear"] = d["emotion"][:, fear]
    mean_acc = _probe(train, test, ["visual"], "fear", pool=np.mean)
    max_acc = _probe(train, test, ["visual"], "fear", pool=np.max)
    assert max_acc > mean_acc + 0.04, (max_acc, mean_acc)


def test_bad_arguments():
    with pytest.raises(KeyError, match="mustard"):
        SynthAffect("cmu", "train")
    with pytest.raises(KeyError, match="validation"):
        SynthAffect("mosei", "dev")
    with pytest.raises(IndexError, match="out of range"):
        SynthAffect("mosei", "train", num_examples=3)[3]
