"""The README's promises: its code snippet runs, and CI runs the README's own commands."""

import pathlib
import re

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.S | re.M)
    assert match, f"README has no section '## {title}'"
    return match.group(1)


def test_losses_snippet_runs_and_computes_the_documented_quantities(capsys):
    blocks = re.findall(r"```python\n(.*?)```", _section("Use the losses in your own JAX code"),
                        re.S)
    assert blocks, "the section has no python code block"
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)  # pylint: disable=exec-used
    assert np.isfinite(float(namespace["loss"]))
    assert 0.0 < float(namespace["lam"]) < 0.9
    assert np.all(np.isfinite(np.asarray(namespace["grads"])))
    assert np.asarray(namespace["grads"]).shape == (3, 4, 8)
    # EMA: the first update's weights are 1 / L, so the weighted total is the number of tasks.
    np.testing.assert_allclose(float(namespace["total"]), 2.0, rtol=1e-5)
    # The streamed CCC equals the one-shot CCC of the whole batch.
    va_pred, va_true = np.asarray(namespace["va_pred"]), np.asarray(namespace["va_true"])
    stats_ccc = np.asarray(namespace["metrics"].ccc_finalize(namespace["stats"]))
    for k in range(2):
        x, y = va_pred[:, k].astype(np.float64), va_true[:, k].astype(np.float64)
        ref = 2 * np.mean((x - x.mean()) * (y - y.mean())) / (
            x.var() + y.var() + (x.mean() - y.mean()) ** 2)
        np.testing.assert_allclose(stats_ccc[k], ref, rtol=1e-5)
    assert capsys.readouterr().out.strip()


def test_ci_runs_the_readme_install_and_test_commands():
    ci = (ROOT / ".ci" / "run").read_text()
    commands = re.findall(r"```bash\n(.*?)```", _section("Two commands"), re.S)
    test_command = next(c for c in commands if "pytest" in c).strip()
    for step in test_command.split("&&"):
        step = step.strip()
        if step.startswith(("python3 -m venv", ". .venv")):
            continue  # CI makes its own fresh environment
        assert step in ci, f".ci/run does not run the README step {step!r}"
