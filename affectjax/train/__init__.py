"""The trainer: train state, optimizers, step factories, methods and the training loop.

    from affectjax import train
    train.run(config, workdir)                 # the CLI entry (one-line errors, exit 2)
    train.train_and_evaluate(config, workdir)  # the same, raising `train.UserError`

Pieces for custom loops: `TrainState`, `create_train_state`, `build_optimizer`,
`make_train_step`, `make_eval_step`, `METHODS`, `Checkpointer`, `evaluate`.

Methods defined in their own modules (which import `affectjax.train.methods`) are
registered in `METHODS` here, the one place, so any import of the trainer sees them.
"""

from affectjax.train.checkpoint import Checkpointer
from affectjax.train.errors import ConfigError
from affectjax.train.errors import DataError
from affectjax.train.errors import NonFiniteLossError
from affectjax.train.errors import UserError
from affectjax.train.evaluation import evaluate
from affectjax.train.loop import run
from affectjax.train.loop import train_and_evaluate
from affectjax.train.lsd import LSD
from affectjax.train.methods import METHODS
from affectjax.train.methods import Method
from affectjax.train.methods import get_method
from affectjax.train.mtl_heads import MTL_HEADS
from affectjax.train.optim import build_optimizer
from affectjax.train.setup import setup_run
from affectjax.train.state import TrainState
from affectjax.train.state import create_train_state
from affectjax.train.steps import make_eval_step
from affectjax.train.steps import make_train_step

METHODS[MTL_HEADS.name] = MTL_HEADS
METHODS[LSD.name] = LSD

__all__ = [
    "Checkpointer", "ConfigError", "DataError", "METHODS", "Method", "NonFiniteLossError",
    "TrainState", "UserError", "build_optimizer", "create_train_state", "evaluate",
    "get_method", "make_eval_step", "make_train_step", "run", "setup_run",
    "train_and_evaluate",
]
