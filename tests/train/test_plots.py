"""The run plots: PNG files of the right size, figures closed, legends only where labelled."""

import numpy as np
from PIL import Image

from affectjax.train import plots


def test_save_figure_writes_png_closes_and_adds_legends_only_where_labelled(tmp_path):
    fig, (labelled, bare) = plots.plt.subplots(1, 2, figsize=(4, 2))
    labelled.plot([0, 1], [0, 1], label="loss")
    bare.plot([0, 1], [1, 0])
    path = plots.save_figure(fig, str(tmp_path / "f.png"), axes=(labelled, bare))
    assert path == str(tmp_path / "f.png")
    assert labelled.get_legend() is not None and bare.get_legend() is None
    assert fig.number not in plots.plt.get_fignums()
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (400, 200)


def test_confusion_and_scatter_plots(tmp_path):
    before = set(plots.plt.get_fignums())  # other tests of this process may hold figures
    cm = np.array([[3, 1], [0, 0]])  # an empty row must not divide by zero
    path = plots.plot_confusion(cm, ["a", "b"], str(tmp_path / "cm.png"))
    rng = np.random.default_rng(0)
    va = rng.uniform(-1, 1, (20, 2))
    path2 = plots.plot_va_scatter(va, va, str(tmp_path / "va.png"), ccc=(1.0, 1.0))
    for p in (path, path2):
        with Image.open(p) as image:
            assert image.format == "PNG" and min(image.size) > 100
    assert set(plots.plt.get_fignums()) == before


def test_the_validation_panel_draws_metrics_not_bookkeeping():
    records = [{"step": 10, "split": "train", "time": 1.7e9, "loss": 1.0},
               {"step": 10, "split": "eval", "time": 1.7e9, "P_MTL": 2.0, "CCC_V": 0.5,
                "num_expr": 480.0, "tag": "x"},
               {"step": 20, "split": "eval", "time": 1.7e9, "nme": 0.05}]
    assert plots.eval_metric_keys(records) == ["CCC_V", "P_MTL", "nme"]


def test_members_are_left_to_their_mean_and_changing_weights_get_a_panel(tmp_path):
    records = [{"split": "eval", "step": s, "f1": 0.5, "member0/f1": 0.4,
                "members_mean/f1": 0.45, "member12/acc": 0.3} for s in (2, 4)]
    assert plots.eval_metric_keys(records) == ["f1", "members_mean/f1"]
    train = [{"split": "train", "step": s, "loss": 1.0, "weight/consensus": 0.1 * s,
              "weight/supervised": 1.0} for s in (1, 2, 3)]
    assert plots._varying_weight_keys(train) == ["weight/consensus"]  # pylint: disable=protected-access
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
    figures = []
    original = plt.subplots
    plt.subplots = lambda *a, **k: figures.append(a) or original(*a, **k)
    try:
        plots.plot_curves(train + records, str(tmp_path / "curves.png"))
        plots.plot_curves(records, str(tmp_path / "plain.png"))
    finally:
        plt.subplots = original
    assert figures == [(1, 3), (1, 2)]
    assert (tmp_path / "curves.png").stat().st_size > 0
