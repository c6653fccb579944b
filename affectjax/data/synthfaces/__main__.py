"""Command line: preview grid and generation benchmark for SynthFaces.

    python -m affectjax.data.synthfaces --preview faces.png [--domain wild] [--size 64] [--num 32]
    python -m affectjax.data.synthfaces --bench [--domain studio] [--size 64] [--num 2048]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from affectjax.data.synthfaces import AU_IDS, EXPRESSIONS, DOMAINS, SynthFaces

# Colours of the 11 Helen parsing classes for the overlay.
PALETTE = np.array([
    [0, 0, 0], [230, 180, 150], [120, 60, 20], [200, 110, 40], [40, 90, 255], [40, 220, 255],
    [255, 220, 0], [255, 40, 60], [140, 0, 140], [255, 120, 160], [90, 200, 60]], np.uint8)
LANDMARK_COLOURS = ["red", "orange", "yellow", "lime", "cyan"]


def preview(path: str, *, domain: str, size: int, num: int, seed: int) -> None:
    """Writes a grid of faces: each tile the image (with landmarks) beside the parsing overlay,
    captioned with the expression and active AUs."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ds = SynthFaces(num, seed=seed, image_size=size, domain=domain)
    b = ds.batch(range(num))
    cols = min(8, num)
    rows = -(-num // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.3 * cols, 1.45 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i in range(num):
        ax = axes.flat[i]
        img = b["image"][i]
        overlay = (0.45 * img + 0.55 * PALETTE[b["parsing"][i]]).astype(np.uint8)
        ax.imshow(np.concatenate([img, overlay], axis=1), interpolation="nearest")
        lm = b["landmarks"][i]
        for shift in (0, size):
            ax.scatter(lm[:, 0] + shift, lm[:, 1], s=4, c=LANDMARK_COLOURS, linewidths=0)
        aus = ",".join(str(a) for a, on in zip(AU_IDS, b["au"][i]) if on)
        ax.set_title(f"{EXPRESSIONS[b['expr'][i]]}\nAU {aus or '-'}", fontsize=6.5, pad=1.5)
    fig.suptitle(f"SynthFaces domain={domain} size={size} seed={seed}", fontsize=8)
    fig.tight_layout(pad=0.3, rect=(0, 0, 1, 1 - 0.3 / (1.45 * rows)))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}")


def bench(*, domains: list[str], size: int, num: int, batch: int) -> dict[str, float]:
    """Prints and returns generation throughput in images per wall-clock second (one process,
    one core); images per CPU second are printed beside it (they stay meaningful on a
    machine shared with other jobs)."""
    rates = {}
    for domain in domains:
        ds = SynthFaces(num + batch, seed=0, image_size=size, domain=domain)
        ds.batch(range(batch))  # warm-up
        t0, c0 = time.perf_counter(), time.process_time()
        for start in range(batch, num + batch, batch):
            ds.batch(range(start, min(start + batch, num + batch)))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        rates[domain] = num / wall
        print(f"SynthFaces {domain:>16s} {size}x{size}: {rates[domain]:8.0f} images/s "
              f"({num / max(cpu, 1e-9):.0f} per CPU second)")
    return rates


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m affectjax.data.synthfaces",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--preview", metavar="PNG", help="write a preview grid to this file")
    parser.add_argument("--bench", action="store_true", help="measure images/s")
    parser.add_argument("--domain", default=None, choices=sorted(DOMAINS))
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--num", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args(argv)
    if not args.preview and not args.bench:
        parser.error("give --preview PNG and/or --bench")
    if args.preview:
        preview(args.preview, domain=args.domain or "studio", size=args.size,
                num=args.num or 32, seed=args.seed)
    if args.bench:
        bench(domains=[args.domain] if args.domain else sorted(DOMAINS), size=args.size,
              num=args.num or 2048, batch=args.batch)


if __name__ == "__main__":
    main()
