"""Speed of affectjax against its PyTorch reference, measured in one process.

    python -m affectjax.bench --model efficientnet_b0 --batch-size 32 ...   # `core`
    python -m affectjax.bench.profile --model efficientnet_b0 ...            # `profile`
    python -m affectjax.bench --method cct --num-networks 3 ...              # `cct`

Modules: `core` (the comparison and its command line), `timing` (shared timing helpers),
`torch_reference` (the PyTorch models and their train step), `profile` (per-op profile of
the affectjax train step), `cct` (the M-network CCT ensemble step: vmapped, sequential, PyTorch).
"""

from affectjax.bench.core import bench_affectjax
from affectjax.bench.core import format_table
from affectjax.bench.cli import main
from affectjax.bench.core import make_affectjax_train_step
from affectjax.bench.core import run

__all__ = ["bench_affectjax", "format_table", "main", "make_affectjax_train_step", "run"]
