"""Command line for the data sets: prepare, inspect, preview and benchmark.

    python -m affectjax.data prepare --dataset synthfaces [--data-dir DIR]
    python -m affectjax.data prepare --dataset fer2013 --manual-dir ~/data/fer2013
    python -m affectjax.data inspect --dataset synthfaces --split train
    python -m affectjax.data preview --dataset synthfaces --out grid.png
    python -m affectjax.data bench --dataset synthfaces --batch-size 64

``--kwargs '{"domain": "wild", "image_size": 64}'`` sets ``data.builder_kwargs`` (JSON).
"""

import argparse
import json
import time

import numpy as np

from affectjax.data import pipeline


def _config(args) -> "pipeline.ml_collections.ConfigDict":
    cfg = pipeline.default_config()
    cfg.name = args.dataset
    if args.data_dir:
        cfg.data_dir = args.data_dir
    if args.manual_dir:
        cfg.manual_dir = args.manual_dir
    if args.image_size:
        cfg.image_size = args.image_size
    cfg.builder_kwargs = json.loads(args.kwargs) if args.kwargs else {}
    return cfg


def prepare(args) -> None:
    builder = pipeline.prepare(_config(args))
    splits = {k: v.num_examples for k, v in builder.info.splits.items()}
    print(f"{args.dataset}: {builder.data_dir} {splits}")


def inspect(args) -> None:
    cfg = _config(args)
    src = pipeline.create_source(cfg, args.split)
    ex = src[0]
    print(f"{args.dataset}/{args.split}: {len(src)} examples")
    for key, value in ex.items():
        print(f"  {key:18s} {value.dtype!s:8s} {value.shape}")
    for key, n in (("expr", 8), ("sarcasm", 2), ("sentiment_binary", 2)):
        if key in ex:
            print(f"  {key} histogram: {pipeline.class_counts(src, key, n).tolist()}")


def preview(args) -> None:
    import matplotlib  # pylint: disable=g-import-not-at-top
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

    cfg = _config(args)
    src = pipeline.create_source(cfg, args.split)
    n = min(args.batch_size, len(src))
    batch = next(pipeline.Loader(src, batch_size=n, seed=args.seed, data_config=cfg).iterate())
    image = np.clip(batch["image"] * np.array(cfg.std) + np.array(cfg.mean), 0, 1)
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2 * cols, 2 * rows), squeeze=False)
    colours = ["red", "blue", "yellow", "magenta", "cyan"]  # L eye, R eye, nose, L/R mouth
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= n:
            continue
        ax.imshow(image[k], extent=(0, image.shape[2], image.shape[1], 0))
        if batch.get("landmarks_mask", np.zeros(n, bool))[k]:
            ax.scatter(*batch["landmarks"][k].T, c=colours, s=12)
        if "expr" in batch:
            ax.set_title(f"expr {int(batch['expr'][k])}", fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    plt.close(fig)
    print(f"wrote {args.out} ({n} augmented examples; landmarks: red = left eye, "
          "blue = right eye, yellow = nose, magenta/cyan = left/right mouth corner)")


def bench(args) -> None:
    cfg = _config(args)
    bs, steps = args.batch_size, args.steps
    if args.dataset == "synthfaces":
        from affectjax.data.synthfaces import SynthFaces  # pylint: disable=g-import-not-at-top

        kw = {k: v for k, v in cfg.builder_kwargs.to_dict().items() if k != "sizes"}
        gen = SynthFaces(100_000, **kw)
        gen[0]
        t = time.perf_counter()
        for i in range(1, 1 + 2 * bs):
            gen[i]
        print(f"generation: {2 * bs / (time.perf_counter() - t):.0f} images/s "
              "(SynthFaces, one core, one example at a time)")
        t = time.perf_counter()
        gen.batch(list(range(bs)))
        print(f"generation: {bs / (time.perf_counter() - t):.0f} images/s (SynthFaces.batch)")
    src = pipeline.create_source(cfg, cfg.train_split)
    it = pipeline.Loader(src, batch_size=min(bs, len(src)), data_config=cfg).iterate()
    next(it)
    t = time.perf_counter()
    for _ in range(steps):
        next(it)
    rate = steps * min(bs, len(src)) / (time.perf_counter() - t)
    print(f"pipeline: {rate:.0f} images/s (TFDS array_record -> augmented batches of "
          f"{min(bs, len(src))}, {cfg.num_threads} threads, image_size {cfg.image_size})")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m affectjax.data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, fn in (("prepare", prepare), ("inspect", inspect), ("preview", preview),
                     ("bench", bench)):
        p = sub.add_parser(name, help=fn.__name__)
        p.set_defaults(fn=fn)
        p.add_argument("--dataset", required=True,
                       help=f"one of {', '.join(sorted(pipeline.DATASETS))}")
        p.add_argument("--data-dir", default="", help="TFDS data dir (~/tensorflow_datasets)")
        p.add_argument("--manual-dir", default="", help="original files of a real data set")
        p.add_argument("--kwargs", default="", help="builder kwargs as JSON")
        p.add_argument("--image-size", type=int, default=0, help="model input size")
        p.add_argument("--split", default="train")
        p.add_argument("--batch-size", type=int, default=64 if name == "bench" else 16)
        p.add_argument("--steps", type=int, default=20, help="bench: batches timed")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--out", default="preview.png", help="preview: output image")
    args = parser.parse_args(argv)
    try:
        pipeline.get_builder_class(args.dataset)
    except KeyError as err:
        parser.error(str(err.args[0]))
    args.fn(args)


if __name__ == "__main__":
    main()
