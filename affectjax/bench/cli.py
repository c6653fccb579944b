"""The command line of the benchmark: ``python -m affectjax.bench [--method single|cct]``.

``--method single`` (the default) times one network (`affectjax.bench.core`); ``--method
cct --num-networks M`` the M-network CCT ensemble step (`affectjax.bench.cct`). Both time
``--rounds`` interleaved rounds of ``--steps-per-round`` steps per framework or variant
after ``--warmup`` untimed steps, ``--repeat`` times, and print `report.format_table`.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from affectjax import models
from affectjax.bench import cct
from affectjax.bench import core
from affectjax.bench import report
from affectjax.bench import timing


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        prog="python -m affectjax.bench", description=__doc__.split("\n")[0],
        allow_abbrev=False,  # no `--steps` silently read as `--steps-per-round`
    )
    parser.add_argument("--model", default="efficientnet_b0", choices=sorted(models.MODELS))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--rounds", type=int, default=7,
                        help="interleaved rounds; the order alternates from round to round")
    parser.add_argument("--steps-per-round", type=int, default=3,
                        help="timed steps of each framework (variant) per round")
    parser.add_argument("--warmup", type=int, default=3,
                        help="untimed steps of each after its compilation")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rerun the rounds N times in this process, one interval each")
    parser.add_argument("--optimizer", default=None, choices=("sgd", "adam"),
                        help="default: sgd for --method single, adam for --method cct")
    parser.add_argument("--method", default="single", choices=("single", "cct"),
                        help="cct: the M-network CCT train step, see affectjax.bench.cct")
    parser.add_argument("--num-networks", type=int, default=None,
                        help="--method cct only: the ensemble size M, 1 to 4 (default 3)")
    parser.add_argument("--json", default=None, help="write the record to this file")
    parser.add_argument("--no-torch", action="store_true", help="affectjax only")
    parser.add_argument(
        "--torch-contiguous",
        action="store_true",
        help="PyTorch in NCHW contiguous format instead of channels_last",
    )
    parser.add_argument("--impl", action="append", default=[], metavar="ATTR=VALUE",
                        help="a model attribute choosing a kernel, e.g. pool_impl=xla "
                             "(depthwise_impl, pool_impl, conv_impl: auto, xla or cpu); repeatable")
    parser.add_argument("--variant", action="append", default=[], metavar="ATTR=VALUE",
                        help="--method single: also time affectjax with these attributes "
                             "changed, in the same rounds (ratio affectjax/variant); repeatable")
    parser.add_argument("--compile-only", action="store_true",
                        help="--method single: only lower and compile the affectjax train step "
                             "(with --impl) and print the seconds; nothing is timed")
    args = parser.parse_args(argv)
    if args.method != "cct" and args.num_networks is not None:
        raise SystemExit("--num-networks applies to --method cct only")
    try:  # the settings' errors as one line, before anything is built
        timing.check_settings(rounds=args.rounds, steps_per_round=args.steps_per_round,
                              warmup=args.warmup, repeat=args.repeat)
        num_networks = cct.check_num_networks(
            3 if args.num_networks is None else args.num_networks)
        impls = core.parse_impls(args.model, args.impl)
        variant = core.parse_impls(args.model, args.variant)
        if args.method == "cct" and (impls or variant):
            raise ValueError("--impl and --variant apply to --method single only")
    except ValueError as err:
        raise SystemExit(str(err)) from None
    timed = dict(batch_size=args.batch_size, image_size=args.image_size, dtype=args.dtype,
                 rounds=args.rounds, steps_per_round=args.steps_per_round, warmup=args.warmup,
                 repeat=args.repeat, torch_reference_too=not args.no_torch,
                 torch_channels_last=not args.torch_contiguous)
    if args.compile_only:
        if args.method != "single" or variant:
            raise SystemExit("--compile-only applies to --method single without --variant")
        record = core.compile_train_step(args.model, batch_size=args.batch_size,
                                         image_size=args.image_size, dtype=args.dtype,
                                         optimizer=args.optimizer or "sgd", impls=impls)
        print(report.format_compile(record))
    elif args.method == "cct":
        record = cct.run(args.model, num_networks=num_networks,
                         optimizer=args.optimizer or "adam", **timed)
    else:
        record = core.run(args.model, optimizer=args.optimizer or "sgd", impls=impls,
                          variant=variant, **timed)
    if not args.compile_only:
        print(report.format_table(record))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(record, f, indent=2)
    return record
