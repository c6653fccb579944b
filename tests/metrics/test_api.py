"""The public API of affectjax.metrics: one argument order, four streaming names."""

import inspect

import pytest

from affectjax import metrics

ONE_SHOT = ("ccc", "confusion_matrix", "accuracy", "f1_per_class", "f1_macro", "cct_score",
            "binary_counts", "binary_f1", "weighted_accuracy", "au_f1", "nme",
            "nme_per_item", "failure_rate", "parsing_fscore")
FAMILIES = ("ccc", "confusion", "binary", "abaw", "landmark", "parsing")


@pytest.mark.parametrize("name", ONE_SHOT)
def test_one_shot_metrics_take_y_true_then_y_pred(name):
    params = list(inspect.signature(getattr(metrics, name)).parameters)
    assert params[:2] == ["y_true", "y_pred"]


@pytest.mark.parametrize("family", FAMILIES)
def test_streaming_families_have_init_update_merge_finalize(family):
    for suffix in ("init", "update", "merge", "finalize"):
        assert callable(getattr(metrics, f"{family}_{suffix}")), f"{family}_{suffix}"
    update = list(inspect.signature(getattr(metrics, f"{family}_update")).parameters)
    if family == "abaw":
        assert update[:7] == ["stats", "va_true", "va_pred", "expr_true", "expr_pred",
                              "au_true", "au_pred"]
    else:
        assert update[1:3] == ["y_true", "y_pred"]


def test_abaw_score_takes_each_pair_true_first_and_mask_by_keyword():
    params = inspect.signature(metrics.abaw_mtl_score).parameters
    assert list(params)[:6] == ["va_true", "va_pred", "expr_true", "expr_pred", "au_true",
                                "au_pred"]
    for name in ("va_mask", "au_threshold"):
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY
