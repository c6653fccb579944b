"""Speed of affectjax against its PyTorch reference, measured in one process.

    python -m affectjax.bench --model efficientnet_b0 --batch-size 32 ...   # `core`
    python -m affectjax.bench.profile --model efficientnet_b0 ...            # `profile`
    python -m affectjax.bench --method cct --num-networks 3 ...              # `cct`

Modules: `cli` (the command line), `core` (the single-network comparison), `timing` (warm-up,
interleaved rounds, summaries, the bootstrap interval of a ratio), `report` (the printed
tables), `torch_reference` (the PyTorch models and their steps), `profile` (per-op profile of
the affectjax train step), `cct` (the M-network CCT ensemble step: vmapped, sequential, PyTorch).
"""

from affectjax.bench.cli import main
from affectjax.bench.core import affectjax_steps
from affectjax.bench.core import make_affectjax_train_step
from affectjax.bench.core import parse_impls
from affectjax.bench.core import run
from affectjax.bench.report import format_table

__all__ = ["affectjax_steps", "format_table", "main", "make_affectjax_train_step", "parse_impls",
           "run"]
