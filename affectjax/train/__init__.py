"""The generic trainer: train state, optimizers, step factories and the training loop.

It names no method: a method (`affectjax.methods`) describes itself as a `Method` and
the trainer runs it::

    from affectjax import methods, train
    train.train_and_evaluate(config, workdir, methods.get_method(config.method))
    methods.train_and_evaluate(config, workdir)   # the same, resolving config.method
    state, final = train.fit(config, workdir, method)   # a pipeline's stage: also the state

Pieces for custom loops: `TrainState`, `create_train_state`, `build_optimizer`,
`make_train_step`, `make_eval_step`, `default_apply`, `Checkpointer`, `evaluate`.
"""

from affectjax.train.checkpoint import Checkpointer
from affectjax.train.errors import ConfigError
from affectjax.train.errors import DataError
from affectjax.train.errors import NonFiniteLossError
from affectjax.train.errors import UserError
from affectjax.train.evaluation import evaluate
from affectjax.train.loop import cli_errors
from affectjax.train.loop import fit
from affectjax.train.loop import run
from affectjax.train.loop import train_and_evaluate
from affectjax.train.method import Method
from affectjax.train.optim import build_optimizer
from affectjax.train.setup import setup_run
from affectjax.train.state import TrainState
from affectjax.train.state import create_train_state
from affectjax.train.steps import default_apply
from affectjax.train.steps import make_eval_step
from affectjax.train.steps import make_train_step

__all__ = [
    "Checkpointer", "ConfigError", "DataError", "Method", "NonFiniteLossError",
    "TrainState", "UserError", "build_optimizer", "cli_errors", "create_train_state",
    "default_apply", "evaluate", "fit", "make_eval_step", "make_train_step", "run", "setup_run",
    "train_and_evaluate",
]
