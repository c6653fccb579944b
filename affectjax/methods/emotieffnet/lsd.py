"""Learning from synthetic data (LSD): MT-EmotiEffNet's 6-class fine-tune and blend.

Savchenko, ABAW4 2022, Sec. 2.2, Fig. 2 and Tables 7-8. The pre-trained MT-EmotiEffNet
(8 expressions + valence/arousal) meets a 6-class task (anger, disgust, fear, happiness,
sadness, surprise) whose training faces are synthetic and whose validation faces are
real. The `LSD` method is a *pipeline* (``python train.py --config
configs/lsd_synthfaces.py``) of four stages, each reused by a rerun once finished:

1. **Training set** (``<workdir>/train_images``, `affectjax.methods.emotieffnet.lsd_data`): the
   synthetic faces of the 6 classes (``lsd.train``: rendered SynthFaces or a
   class-folder set), optionally enlarged by
   super-resolution (``lsd.super_resolution``, `affectjax.methods.emotieffnet.super_resolution`; the
   authors: Real-ESRGAN, scale 2), written as a class-folder set whose folders map to
   the LSD indices.
2. **Fine-tune** with the trainer (`affectjax.train.loop.train_and_evaluate`, method
   ``emotieffnet`` with ``num_expressions=6``): its head is replaced by a new
   Linear(features -> 6 + 2) (the pre-trained 10-output ``classifier`` does not fit, so
   ``init_from`` keeps it random and says so), then phase ``head`` (head only; paper: 3
   epochs, lr 1e-3, SAM + Adam, class-weighted CE) in ``<workdir>/finetune_head`` and
   optionally phase ``full`` (all weights from the head run's result; paper: 6 epochs,
   lr 1e-4) in ``<workdir>/finetune_all``. The pre-trained weights come from a trainer
   workdir (``lsd.pretrained_workdir``, its ``best/`` checkpoint, restored by
   `affectjax.methods.emotieffnet.features.load_backbone`) or a converted checkpoint
   (``lsd.pretrained_checkpoint``).
3. **Scores** on the validation set (``config.data``, split ``data.eval_split``;
   faces labelled Neutral, Other or missing are dropped as the paper does with the MTL
   validation set): s_pre = the pre-trained model's scores of the 6 matching classes,
   s_ft = the fine-tuned model's (``lsd.scores``: ``softmax`` = posterior
   probabilities, the paper's choice, the pre-trained softmax taken over its 8 classes;
   or raw ``logits``). Class mapping (ABAW order -> LSD index)::

       ABAW  0 Neutral   1 Anger  2 Disgust  3 Fear  4 Happiness  5 Sadness  6 Surprise  7 Other
       LSD      -        0        1          2       3            4          5           -

4. **Blend** s = w * s_ft + (1 - w) * s_pre with w on ``linspace(0, 1, lsd.blend_grid)``
   maximising the validation macro-F1 over the 6 classes (the challenge metric), by
   `affectjax.tuning.tune_blend_weight` (first best w). The paper writes the same blend
   with w on the pre-trained scores: its w is 1 - ours. Writes ``final_metrics.json``,
   ``report.md`` (Table 8's rows) and ``plots/`` (F1 against w, confusion matrices of
   the pre-trained model and of the blend as Fig. 3).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import sys
import time
from typing import Any

import numpy as np

from affectjax.methods.emotieffnet import features as features_lib
from affectjax import tuning
from affectjax.methods.emotieffnet import lsd_data
from affectjax.methods.emotieffnet import lsd_report
from affectjax.methods.emotieffnet import pretrain as methods_lib
from affectjax.methods.emotieffnet.lsd_data import ABAW_TO_LSD, LSD_CLASSES, LSD_TO_ABAW, to_lsd_labels
from affectjax.train.errors import ConfigError, DataError
from affectjax.train.setup import user_errors

VARIANTS = {"head": "finetune_head", "full": "finetune_all"}  # phase -> workdir



def pretrained_scores(expr_logits: Any, *, kind: str = "softmax") -> np.ndarray:
    """The pre-trained model's scores of the 6 LSD classes from its 8 ABAW logits.

    Args:
      expr_logits: (N, 8) expression logits in ABAW order.
      kind: ``softmax`` (posterior probabilities over the 8 classes, then the 6 columns;
        paper Sec. 2.2) or ``logits`` (the 6 logits).

    Returns:
      (N, 6) float64 scores in LSD order.
    """
    return _scores(np.asarray(expr_logits, np.float64), kind)[:, LSD_TO_ABAW]


def _scores(logits: np.ndarray, kind: str) -> np.ndarray:
    if kind == "logits":
        return logits
    if kind != "softmax":
        raise ConfigError(f"config.lsd.scores={kind!r}; choose softmax or logits")
    z = np.exp(logits - logits.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


# ----------------------------------------------------------------------------------
# stage 2: fine-tuning with the trainer


def _pretrained(config: Any, workdir: str) -> tuple[Any, Any, str]:
    """``(model, variables, init_from directory)`` of the pre-trained MT-EmotiEffNet."""
    from affectjax import convert  # pylint: disable=import-outside-toplevel

    lsd = config.lsd
    ckpt, run = lsd.get("pretrained_checkpoint", ""), lsd.get("pretrained_workdir", "")
    if bool(ckpt) == bool(run):
        raise ConfigError("set exactly one of config.lsd.pretrained_workdir (a trainer run) "
                          "and config.lsd.pretrained_checkpoint (python -m affectjax.convert)")
    if run and not os.path.isdir(os.path.join(run, "best")) and not os.path.isdir(
            os.path.join(run, "checkpoints")):
        raise DataError(f"config.lsd.pretrained_workdir={run}: no trainer run there (no best/ "
                        "or checkpoints/); train it first, e.g. python train.py --config "
                        f"configs/quickstart.py --workdir {run}")
    if ckpt and os.path.isfile(os.path.join(ckpt, "meta.json")):
        features_lib.require_abaw_head(ckpt, "config.lsd.pretrained_checkpoint")
    model, variables, origin = features_lib.load_backbone(
        config.model, checkpoint=ckpt, workdir=run)
    if ckpt:
        return model, variables, ckpt
    init_dir = os.path.join(workdir, "pretrained")
    if not os.path.exists(os.path.join(init_dir, "meta.json")):
        kwargs = lsd_data.plain(config.model)
        convert.save_converted(init_dir, variables, {
            "arch": kwargs.pop("name", "emotieffnet"), "model_kwargs": kwargs,
            "origin": origin})
    return model, variables, init_dir


def finetune_config(config: Any, phase: str, *, data_dir: str, image_size: int,
                    init_from: str) -> Any:
    """The trainer config of one fine-tuning phase (method ``emotieffnet``, 6 classes)."""
    c = copy.deepcopy(config)
    c.method = "emotieffnet"
    c.model.num_expressions = 6
    c.data.name = "image_folder"
    c.data.manual_dir = os.path.join(data_dir, "train_images")
    c.data.data_dir = os.path.join(data_dir, "tfds")
    c.data.builder_kwargs = dict(image_size=int(image_size), class_names={
        n.lower(): i for i, n in enumerate(LSD_CLASSES)})  # folder -> LSD index
    c.data.train_split = c.data.eval_split = "train"  # the only split of a folder set
    c.phase_order = (phase,)
    c.init_from = init_from
    c.eval_every_epochs = 10**9  # one evaluation, at the end: best/ = the final weights
    return c


def _finetune(config: Any, workdir: str, phase: str, image_size: int, init_from: str) -> str:
    from affectjax.train import loop  # pylint: disable=import-outside-toplevel

    run = os.path.join(workdir, VARIANTS[phase])
    if not os.path.exists(os.path.join(run, "final_metrics.json")):
        print(f"lsd: fine-tuning ({phase}) in {run}", file=sys.stderr, flush=True)
        loop.train_and_evaluate(finetune_config(
            config, phase, data_dir=workdir, image_size=image_size, init_from=init_from), run,
            LSD_FINETUNE)
    return run


# ----------------------------------------------------------------------------------
# stage 3: validation scores


def _logits(config: Any, model: Any, variables: Any, origin: str, path: str) -> dict:
    """Validation logits and ABAW labels of one model, cached in ``path`` (npz)."""
    from affectjax.data import pipeline  # pylint: disable=import-outside-toplevel
    from affectjax.models import make_feature_fn  # pylint: disable=import-outside-toplevel

    data = config.data
    key = json.loads(json.dumps({"origin": origin, "split": data.eval_split, "data": {
        k: lsd_data.plain(data[k]) if hasattr(data[k], "keys") else data[k]
        for k in ("name", "builder_kwargs", "image_size", "mean", "std", "manual_dir")}}))
    if os.path.exists(path):
        arrays, meta = features_lib.load_cache(path)
        if meta.get("key") == key:
            return arrays
    loader = pipeline.Loader(pipeline.create_source(data, data.eval_split),
                             batch_size=int(config.get("eval_batch_size", 0)
                                            or config.batch_size),
                             shuffle=False, train=False, data_config=data)
    arrays = features_lib.extract(make_feature_fn(model), variables, loader.eval_batches())
    features_lib.save_cache(path, arrays, {"key": key})
    return arrays


def _restore_finetuned(config: Any, run: str) -> tuple[Any, Any, str]:
    model_cfg = copy.deepcopy(config.model)
    model_cfg.num_expressions = 6
    return features_lib.load_backbone(model_cfg, workdir=run)


# ----------------------------------------------------------------------------------
# stage 4: blend, metrics, report, plots


def _metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    from affectjax import metrics as metrics_lib  # pylint: disable=import-outside-toplevel
    cm = np.asarray(metrics_lib.confusion_matrix(labels, np.argmax(scores, -1), 6))
    return {"f1": float(metrics_lib.f1_macro_from_cm(cm)),
            "accuracy": float(metrics_lib.accuracy_from_cm(cm)),
            "f1_per_class": dict(zip(LSD_CLASSES, np.asarray(
                metrics_lib.f1_per_class_from_cm(cm), float).round(4).tolist())),
            "confusion_matrix": cm.tolist()}


def blend_scores(s_ft: np.ndarray, s_pre: np.ndarray, labels: np.ndarray, *,
                 grid: Any) -> dict[str, Any]:
    """Tunes w of s = w s_ft + (1 - w) s_pre on macro-F1; metrics of the blend at w."""
    result = tuning.tune_blend_weight(s_ft, s_pre, labels, metric="f1_macro", grid=grid)
    out = _metrics(labels, tuning.blend(s_ft, s_pre, result.weight))
    out.update(weight=result.weight, paper_w=round(1.0 - result.weight, 6),
               grid=np.asarray(grid, float).tolist(), curve=result.scores.tolist())
    return out


def run_pipeline(config: Any, workdir: str) -> dict[str, Any]:
    """Runs the four stages (module docstring) in `workdir`; returns ``final_metrics.json``.

    Args:
      config: an LSD config (``configs/lsd_*.py``): ``model`` (the pre-trained
        architecture, 8 expressions), ``data`` (validation faces), ``phases`` /
        ``phase_order`` (``head`` and optionally ``full``), ``lsd`` (training set,
        pre-trained weights, super-resolution, scores, blend grid) and the trainer's keys.
      workdir: the run directory.

    Raises:
      UserError: a bad ``lsd`` setting or missing pre-trained weights (one line).
    """
    t0 = time.perf_counter()
    lsd = config.lsd
    os.makedirs(workdir, exist_ok=True)
    with user_errors():
        order = [p for p in config.phase_order if config.phases[p].epochs > 0]
        if not order or order[0] != "head" or any(p not in VARIANTS for p in order):
            raise ConfigError(f"config.phase_order={tuple(config.phase_order)}: the LSD "
                              "fine-tune runs 'head', then optionally 'full'")
        from affectjax.data import pipeline  # pylint: disable=import-outside-toplevel
        pipeline.check_available(config.data)  # the validation faces, before any work
        model, variables, init_from = _pretrained(config, workdir)
        data = lsd_data.write_training_set(config, os.path.join(workdir, "train_images"))
        pre = _logits(config, model, variables, f"pretrained:{init_from}",
                      os.path.join(workdir, "scores", "pretrained.npz"))
    labels = to_lsd_labels(pre["expr"])
    keep = labels >= 0
    if not keep.any():
        raise DataError(f"config.data {config.data.name}/{config.data.eval_split}: no face "
                        "labelled with one of the 6 LSD classes")
    kind = lsd.get("scores", "softmax")
    s_pre = pretrained_scores(pre["logits"][keep, :8], kind=kind)
    labels = labels[keep]
    grid = np.linspace(0.0, 1.0, int(lsd.get("blend_grid", 11)))
    final: dict[str, Any] = {
        "classes": list(LSD_CLASSES), "abaw_to_lsd": ABAW_TO_LSD.tolist(),
        "validation": f"{config.data.name}/{config.data.eval_split}",
        "num_validation": int(keep.sum()), "train_counts": data["counts"],
        "super_resolution": lsd.super_resolution, "scores": kind,
        "pretrained": _metrics(labels, s_pre), "finetuned": {}}
    init = init_from
    for phase in order:
        run = _finetune(config, workdir, phase, data["image_size"], init)
        ft_model, ft_vars, origin = _restore_finetuned(config, run)
        ft = _logits(config, ft_model, ft_vars, origin,
                     os.path.join(workdir, "scores", f"{VARIANTS[phase]}.npz"))
        s_ft = _scores(np.asarray(ft["logits"][keep, :6], np.float64), kind)
        final["finetuned"][phase] = dict(_metrics(labels, s_ft), workdir=run,
                                         blend=blend_scores(s_ft, s_pre, labels, grid=grid))
        if phase == "head":
            init = _save_init(workdir, ft_vars, config)
    last = order[-1]
    final["blended"] = dict(final["finetuned"][last]["blend"], finetuned=last)
    final["seconds"] = round(time.perf_counter() - t0, 2)
    with open(os.path.join(workdir, "final_metrics.json"), "w") as f:
        json.dump(final, f, indent=2)
    with open(os.path.join(workdir, "report.md"), "w") as f:
        f.write(lsd_report.markdown(final))
    final["plots"] = lsd_report.write_plots(os.path.join(workdir, "plots"), final)
    b = final["blended"]
    print(f"lsd: macro-F1 pre-trained {final['pretrained']['f1']:.4f}, fine-tuned ({last}) "
          f"{final['finetuned'][last]['f1']:.4f}, blended {b['f1']:.4f} at w={b['weight']:.2f}"
          f" -> {workdir}/report.md", flush=True)
    return final


def _save_init(workdir: str, variables: Any, config: Any) -> str:
    """The head run's weights as a converted checkpoint: ``init_from`` of phase ``full``."""
    from affectjax import convert  # pylint: disable=import-outside-toplevel
    path = os.path.join(workdir, "finetuned_head")
    if not os.path.exists(os.path.join(path, "meta.json")):
        kwargs = dict(lsd_data.plain(config.model), num_expressions=6)
        convert.save_converted(path, variables, {"arch": kwargs.pop("name", "emotieffnet"),
                                                 "model_kwargs": kwargs})
    return path


# The fine-tune stage: MT-EmotiEffNet's recipe on the 6 LSD classes, named in LSD order.
LSD_FINETUNE = dataclasses.replace(methods_lib.EMOTIEFFNET, name="lsd_finetune",
                                   class_names=lambda config: LSD_CLASSES)
LSD = dataclasses.replace(methods_lib.EMOTIEFFNET, name="lsd", pipeline=run_pipeline,
                          predictor=None)  # its stage directories are emotieffnet runs
