"""Every config in ``configs/`` loads; a real-data config without its data is one line, exit 2."""

import glob
import os

import ml_collections
import pytest

from affectjax import methods
from affectjax.data.builders import MANUAL
from affectjax.methods.emotieffnet.features import load_config

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
HELPERS = ("common.py",)  # shared defaults, not a run
CONFIGS = sorted(os.path.basename(p) for p in glob.glob(os.path.join(REPO, "configs", "*.py"))
                 if os.path.basename(p) not in HELPERS)


def _load(name):
    return load_config(os.path.join(REPO, "configs", name))


@pytest.mark.parametrize("name", CONFIGS)
def test_config_loads(name):
    config = _load(name)
    assert isinstance(config, ml_collections.ConfigDict)
    assert config.method in methods.METHODS, (name, config.method, sorted(methods.METHODS))
    assert config.data.name and config.batch_size > 0 and config.phase_order


@pytest.mark.parametrize("name", ["mtl_heads_synthfaces.py:simultaneous",
                                  "mtl_heads_affwild2.py:simultaneous"])
def test_config_variants_load(name):
    assert _load(name).phase_order == ("all",)


REAL = [n for n in CONFIGS if _load(n).data.name in MANUAL]


def test_the_paper_settings_are_real_data_configs():
    assert {"emotieffnet_affectnet.py", "mtl_heads_affwild2.py", "cct_affwild2.py",
            "cct_affectnet_pretrain.py"} <= set(REAL)


@pytest.mark.parametrize("manual_dir", ["", "no/such/folder"])
@pytest.mark.parametrize("name", REAL)
def test_real_data_config_without_its_data_is_one_line(name, manual_dir, tmp_path, capsys,
                                                       monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = _load(name)
    config.data.data_dir = str(tmp_path / "tfds")
    config.data.manual_dir = manual_dir
    with pytest.raises(SystemExit) as exc:
        methods.run(config, str(tmp_path / "run"))
    assert exc.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ") and "needs data.manual_dir" in lines[0], lines[0]
    assert f"(got {manual_dir!r})" in lines[0] and config.data.name in lines[0]
    assert not (tmp_path / "tfds").exists()
