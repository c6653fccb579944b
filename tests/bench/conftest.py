"""Fake benchmark steps: `core.run` and `cct.run` without building or timing a model."""

import pytest

from affectjax.bench import cct
from affectjax.bench import core
from affectjax.bench import timing
from affectjax.bench import torch_reference

CCT_JAX_VARIANTS = ("single", "vmapped", "unrolled", "sequential_jax")


@pytest.fixture
def fake_steps(monkeypatch):
    """Replaces the steps `core.run` and `cct.run` build by ones that only log their name.

    Returns the log: one ``"<framework or variant>/<phase>"`` entry per call, warm-up
    included. Fake JAX steps report a compile time of 1 s, all a peak of 10 MiB and a
    first loss of 0.5.
    """
    log = []

    def prepared(name, warmup, compile_s):
        return timing.warm_up(lambda: log.append(name), warmup, lambda: 10.0, compile_s)

    def single(framework, compile_s):
        def build(model, *, warmup, model_kwargs=None, **_):
            name = framework  # "affectjax[pool_impl=xla]" for a model built with attributes
            if model_kwargs:
                name += "[" + ",".join(f"{k}={v}" for k, v in model_kwargs.items()) + "]"
            return {p: prepared(f"{name}/{p}", warmup, compile_s) for p in core.PHASES}
        return build

    def jax_cct(model, num_networks, cfg, first_loss):
        first_loss.update(dict.fromkeys(CCT_JAX_VARIANTS, 0.5))
        return {name: prepared(f"{name}/train_step", cfg["warmup"], 1.0)
                for name in CCT_JAX_VARIANTS}

    def torch_cct(model, num_networks, cfg, first_loss, channels_last=True):
        first_loss["torch"] = 0.5
        return prepared("torch/train_step", cfg["warmup"], None)

    monkeypatch.setattr(core, "affectjax_steps", single("affectjax", 1.0))
    monkeypatch.setattr(torch_reference, "torch_steps", single("torch", None))
    monkeypatch.setattr(cct, "jax_steps", jax_cct)
    monkeypatch.setattr(cct, "torch_step", torch_cct)
    return log
