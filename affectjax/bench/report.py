"""The Markdown tables that `python -m affectjax.bench` prints from its records.

`format_table` renders a `core.run` record (one row per phase: both frameworks' images/s,
median and minimum step, the ratio with its interval, compile time, peak memory) or a
`cct.run` record (one row per variant, then the ratios with their intervals). With
`--repeat` > 1 each repeat gets its own rows (single network) or column (CCT ratios), and
a last line says whether the repeats' intervals overlap. The footer gives the load average
before and after the run and the CPU count.
"""

from __future__ import annotations

from typing import Any, Sequence

from affectjax.bench import core

FRAMEWORKS = {"affectjax": "affectjax", "torch": "PyTorch"}
VARIANTS = {
    "single": "single (1 net, CE)",
    "vmapped": "vmapped (M nets, 1 jit)",
    "unrolled": "unrolled (M nets, 1 jit, loop)",
    "sequential_jax": "sequential_jax (M fwd + M jitted steps)",
    "torch": "torch (M models, M backward)",
}
CCT_RATIOS = {
    "vmapped_cost_over_single": "vmapped / single step time (goal <= 2.4× for M=3 on GPU)",
    "unrolled_cost_over_single": "unrolled / single step time",
    "vmapped_speedup_over_unrolled": "vmapped speed-up over unrolled",
    "vmapped_speedup_over_sequential_jax": "vmapped speed-up over sequential_jax",
    "vmapped_speedup_over_torch": "vmapped speed-up over torch",
}


def format_ratio(ratio: float, interval: Sequence[float]) -> str:
    """A ratio with its interval, as ``1.13× [1.05, 1.21]``."""
    return f"{ratio:.2f}× [{interval[0]:.2f}, {interval[1]:.2f}]"


def _ratio_cell(part: dict[str, Any], key: str) -> str:
    """`format_ratio` of ratio `key` of a record or repeat; "-" where it has none."""
    if key not in part["ratio"]:
        return "-"
    return format_ratio(part["ratio"][key], part["ratio_interval"][key])


def _footer(record: dict[str, Any]) -> list[str]:
    """The load averages before and after and the CPU count; with several repeats, whether
    their intervals overlap."""
    before, after = ("/".join(f"{x:.1f}" for x in record[k])
                     for k in ("load_average_before", "load_average_after"))
    lines = ["", f"load average (1/5/15 min) {before} before, {after} after; "
                 f"{record['cpu_count']} CPUs"]
    if len(record["repeats"]) > 1 and record["intervals_overlap"]:
        lines.append("repeats' intervals overlap: " + ", ".join(
            f"{k} {'yes' if v else 'no'}" for k, v in record["intervals_overlap"].items()))
    return lines


def _method(cfg: dict[str, Any], per: str) -> str:
    """The timing settings of the header."""
    return (f"{cfg['rounds']} interleaved rounds of {cfg['steps_per_round']} steps per {per} "
            f"after {cfg['warmup']} warm-up steps, {cfg['repeat']} repeat(s); median and min "
            f"of all timed steps; ratios with a {cfg['bootstrap']['level']:.0%} bootstrap "
            "interval over rounds")


def _framework_row(label: str, part: dict[str, Any], phase: str) -> str:
    """One row of the single-network table for a record or one of its repeats (these have
    no compile time or peak memory: "-")."""
    found = {fw: part[fw][phase] for fw in FRAMEWORKS if fw in part}
    cells = [label]
    cells += [f"{found[fw]['images_per_s']:.1f}" if fw in found else "-" for fw in FRAMEWORKS]
    cells += [f"{1e3 * found[fw]['median_step_s']:.1f} / {1e3 * found[fw]['min_step_s']:.1f}"
              if fw in found else "-" for fw in FRAMEWORKS]
    cells.append(_ratio_cell(part, phase))
    compile_s = found["affectjax"].get("compile_s")
    cells.append("-" if compile_s is None else f"{compile_s:.1f}")
    cells += [f"{found[fw]['peak_memory_mb']:.0f}"
              if "peak_memory_mb" in found.get(fw, {}) else "-" for fw in FRAMEWORKS]
    return "| " + " | ".join(cells) + " |"


def _single_table(record: dict[str, Any]) -> str:
    cfg, versions = record["config"], record["versions"]
    size, repeats = cfg["image_size"], record["repeats"]
    lines = [
        f"model {cfg['model']}, batch {cfg['batch_size']}, {size}x{size}, {cfg['dtype']}, "
        f"optimizer {cfg['optimizer']}; {_method(cfg, 'framework')}; device "
        f"{record['device']}; jax {versions['jax']}, torch {versions.get('torch', '-')} "
        f"({record.get('torch_memory_format', '-')}, {record.get('torch_threads', '-')} "
        "threads)",
        "",
        "| phase | affectjax img/s | PyTorch img/s | affectjax median / min ms | "
        "PyTorch median / min ms | ratio affectjax/PyTorch | affectjax compile s | "
        "affectjax peak MB | PyTorch peak MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for phase in core.PHASES:
        lines.append(_framework_row(phase, record, phase))
        if len(repeats) > 1:
            lines += [_framework_row(f"{phase}, repeat {i + 1}", rep, phase)
                      for i, rep in enumerate(repeats)]
    if "variant" in record:
        lines += _variant_table(record)
    return "\n".join(lines + _footer(record))


def _settings(impls: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in impls.items()) or "defaults"


def _variant_table(record: dict[str, Any]) -> list[str]:
    """affectjax as built against its `--variant`, timed in the same rounds."""
    cfg = record["config"]
    parts = [("", record)] + ([(f", repeat {i + 1}", rep) for i, rep in enumerate(record["repeats"])]
                              if len(record["repeats"]) > 1 else [])
    lines = ["", f"affectjax ({_settings(cfg['impls'])}) against the variant "
                 f"({_settings({**cfg['impls'], **cfg['variant']})}), same rounds:", "",
             "| phase | variant img/s | variant median / min ms | ratio affectjax/variant | "
             "variant compile s |", "|---|---|---|---|---|"]
    for phase in core.PHASES:
        for suffix, part in parts:
            v = part["variant"][phase]
            compile_s = v.get("compile_s")
            lines.append("| " + " | ".join([
                phase + suffix, f"{v['images_per_s']:.1f}",
                f"{1e3 * v['median_step_s']:.1f} / {1e3 * v['min_step_s']:.1f}",
                _ratio_cell(part, core.VARIANT_RATIO.format(phase=phase)),
                "-" if compile_s is None else f"{compile_s:.1f}"]) + " |")
    return lines


def _cct_table(record: dict[str, Any]) -> str:
    cfg, versions, repeats = record["config"], record["versions"], record["repeats"]
    lines = [
        f"CCT ensemble train step, M={cfg['num_networks']} networks, lam {cfg['lam']}: model "
        f"{cfg['model']}, batch {cfg['batch_size']}, {cfg['image_size']}x{cfg['image_size']}, "
        f"{cfg['dtype']}, optimizer {cfg['optimizer']}; {_method(cfg, 'variant')}; device "
        f"{record['device']}; jax {versions['jax']}, torch {versions.get('torch', '-')}", "",
        "| variant | img/s | median / min step ms | compile s | peak MB | first loss |",
        "|---|---|---|---|---|---|"]
    for name, label in VARIANTS.items():
        r = record["cct"].get(name)
        cells = ["-"] * 5 if r is None else [
            f"{r['images_per_s']:.1f}",
            f"{1e3 * r['median_step_s']:.1f} / {1e3 * r['min_step_s']:.1f}",
            "-" if r["compile_s"] is None else f"{r['compile_s']:.1f}",
            f"{r['peak_memory_mb']:.0f}", f"{r['first_loss']:.4f}"]
        lines.append("| " + " | ".join([label, *cells]) + " |")
    columns = [("all repeats" if len(repeats) > 1 else "ratio [95 % interval]", record)]
    if len(repeats) > 1:
        columns += [(f"repeat {i + 1}", rep) for i, rep in enumerate(repeats)]
    lines += ["", "| ratio | " + " | ".join(c for c, _ in columns) + " |",
              "|---" * (len(columns) + 1) + "|"]
    for key, label in CCT_RATIOS.items():
        lines.append("| " + " | ".join([label] + [_ratio_cell(p, key) for _, p in columns]) + " |")
    return "\n".join(lines + _footer(record))


def format_compile(record: dict[str, Any]) -> str:
    """One line for a `core.compile_train_step` record."""
    cfg = record["config"]
    return (f"{cfg['model']} train step, batch {cfg['batch_size']}, {cfg['image_size']}x"
            f"{cfg['image_size']}, {cfg['dtype']}, kernels {_settings(cfg['impls'])}: lowered in "
            f"{record['lower_s']:.1f} s, compiled in {record['compile_s']:.1f} s "
            f"({record['device']}, jax {record['versions']['jax']})")


def format_table(record: dict[str, Any]) -> str:
    """Renders a `core.run` or `cct.run` record (``config["method"] == "cct"``) as Markdown."""
    if record["config"].get("method") == "cct":
        return _cct_table(record)
    return _single_table(record)
