"""The methods of the five papers, one package each, and their registry.

`METHODS` maps a config's ``method`` to the `affectjax.train.Method` that the generic
trainer runs. This module is the one place where methods are registered; the trainer
(`affectjax.train`) never imports it: the entry points resolve the name here and hand
the method to the trainer::

    from affectjax import methods
    methods.run(config, workdir)                 # train.py: one-line errors, exit 2
    methods.train_and_evaluate(config, workdir)  # the same, raising train.UserError
"""

from __future__ import annotations

from typing import Any

from affectjax import registry
from affectjax.methods.cct import method as cct
from affectjax.methods.emotieffnet import lsd
from affectjax.methods.emotieffnet import mtl_report
from affectjax.methods.emotieffnet import pretrain
from affectjax.methods.fusion import teachers as fusion
from affectjax.methods.ifan import pipeline as ifan
from affectjax.methods.mtl import method as mtl
from affectjax.train import loop
from affectjax.train.errors import ConfigError
from affectjax.train.method import Method

METHODS: dict[str, Method] = {
    "emotieffnet": pretrain.EMOTIEFFNET,
    "mtl_heads": mtl_report.MTL_HEADS_PIPELINE,
    "lsd": lsd.LSD,
    "cct": cct.CCT,
    "ifan": ifan.IFAN,
    "fusion": fusion.FUSION,
    "mtl": mtl.MTL,
}


def get_method(name: str) -> Method:
    """The registered method `name`; an unknown name raises a KeyError listing choices."""
    return registry.lookup(METHODS, name, "method")


def _resolve(config: Any) -> Method:
    try:
        method = get_method(config.method)
    except KeyError as exc:
        raise ConfigError(f"config.method: {exc.args[0]}") from None
    return method


def train_and_evaluate(config: Any, workdir: str) -> dict[str, Any]:
    """Trains ``config.method`` as `config` says (`affectjax.train.train_and_evaluate`)."""
    return loop.train_and_evaluate(config, workdir, _resolve(config))


def run(config: Any, workdir: str) -> dict[str, Any]:
    """The command-line entry (`affectjax.train.run`): one-line errors, exit status 2."""
    with loop.cli_errors():
        return train_and_evaluate(config, workdir)
