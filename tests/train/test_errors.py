"""User errors: one line on stderr, exit status 2, no traceback; checked before any data."""

import os
import sys

import jax
import numpy as np
import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from configs import quickstart  # noqa: E402  pylint: disable=wrong-import-position

from affectjax import convert  # noqa: E402
from affectjax import models  # noqa: E402
from affectjax import methods  # noqa: E402
from affectjax.train import setup  # noqa: E402


def _config(tmp_path, **changes):
    c = quickstart.get_config()
    c.data.data_dir = str(tmp_path / "never_created")
    for key, value in changes.items():
        target = c
        *parents, leaf = key.split(".")
        for p in parents:
            target = target[p]
        target[leaf] = value
    return c


@pytest.mark.parametrize("changes, expected", [
    ({"method": "emotinet"}, "unknown method 'emotinet'"),
    ({"model.backbone": "efficientnet_b9"}, "efficientnet_b9"),
    ({"balancer.name": "magic"}, "unknown balancer 'magic'"),
    ({"data.name": "affectnett"}, "unknown data set 'affectnett'"),
    ({"optimizer.name": "lamb"}, "unknown optimizer.name 'lamb'"),
    ({"batch_size": -4}, "config.batch_size must be a positive integer"),
    ({"data.name": "affectnet", "data.manual_dir": "/nonexistent/affectnet"},
     "needs data.manual_dir"),
])
def test_bad_config_is_one_line_and_exit_2(tmp_path, capsys, changes, expected):
    with pytest.raises(SystemExit) as info:
        methods.run(_config(tmp_path, **changes), str(tmp_path / "run"))
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    assert expected in err
    assert not os.path.exists(tmp_path / "never_created" / "synthfaces")


def test_phases_are_validated():
    c = quickstart.get_config()
    c.phase_order = ("full", "warmup")
    with pytest.raises(setup.ConfigError, match="'warmup'"):
        setup.build_phases(c, ("backbone", "head"), 10)
    c.phase_order = ("full",)
    c.phases.full.trainable = "neck"
    with pytest.raises(setup.ConfigError, match="neck"):
        setup.build_phases(c, ("backbone", "head"), 10)
    c.phases.full.trainable = "all"
    c.phases.full.epochs = 5
    phases = setup.build_phases(c, ("backbone", "head"), 10)
    assert [(p.start, p.end, p.trainable) for p in phases] == [(0, 50, ("backbone", "head"))]


def test_init_from_loads_matching_arrays_and_keeps_the_rest(tmp_path, fast_compile):
    x = np.zeros((1, 16, 16, 3), np.float32)

    def init(model, seed):  # only copied arrays are compared: compile the inits fast
        with fast_compile():
            return jax.device_get(jax.jit(
                lambda r: model.init(r, x, train=False))(jax.random.PRNGKey(seed)))

    donor = models.create("efficientnet_tiny", num_classes=5)  # a different head
    donor_vars = init(donor, 1)
    convert.save_converted(str(tmp_path / "ckpt"), donor_vars,
                           {"arch": "efficientnet_tiny", "model_kwargs": {}})
    model = models.create("emotieffnet", backbone="efficientnet_tiny")
    mine = init(model, 0)
    loaded, origin = setup.load_pretrained(str(tmp_path / "ckpt"))
    assert origin.startswith("converted:")
    merged, used, kept = setup.merge_by_path(dict(mine), loaded)
    assert "['params']['classifier']['kernel']" in kept and used and not set(used) & set(kept)
    np.testing.assert_array_equal(merged["params"]["conv_stem"]["kernel"],
                                  donor_vars["params"]["conv_stem"]["kernel"])
    np.testing.assert_array_equal(merged["batch_stats"]["bn1"]["mean"],
                                  donor_vars["batch_stats"]["bn1"]["mean"])
    np.testing.assert_array_equal(merged["params"]["classifier"]["kernel"],
                                  mine["params"]["classifier"]["kernel"])
    with pytest.raises(setup.DataError, match="init_from.*neither a converted"):
        setup.load_pretrained(str(tmp_path / "missing"))


def test_oversampling_a_method_with_its_own_data_is_refused(tmp_path):
    import dataclasses  # pylint: disable=import-outside-toplevel
    method = dataclasses.replace(methods.get_method("emotieffnet"),
                                 make_data=lambda config, *, seed: pytest.fail("data read"))
    config = quickstart.get_config()
    config.data.oversample = "expr"
    with pytest.raises(setup.ConfigError, match=r"^config.data.oversample: the emotieffnet "):
        setup.setup_run(config, str(tmp_path), method)
