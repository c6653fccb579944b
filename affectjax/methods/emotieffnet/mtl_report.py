"""The MT-EmotiEffNet MTL pipeline after pre-training, and its report (paper 1, Tables 2-6).

`run_pipeline` chains the paper's post-pre-training steps on one config:

0. optionally (``pretrain.enabled``), the backbone's own pre-training run
   (`pretrain_backbone`), so that one command, and a sweep over seeds, covers Table 2's
   comparison of backbones pre-trained on expressions + VA and on expressions only;
1. features of the frozen backbone per split, cached (`affectjax.methods.emotieffnet.features`);
2. the ``mtl_heads`` method on them, heads trained separately or simultaneously
   (`affectjax.methods.emotieffnet.mtl_heads.train_heads`);
3. tuning on the validation split (`affectjax.tuning`): one threshold per AU on
   0.1, ..., 0.9 and, optionally, the blending weight w of the heads' expression scores
   with an expert's, s = w s_heads + (1 - w) s_expert (the paper's OpenFace blend; here
   the expert ``backbone`` is the frozen network's own 8 expression logits, softmaxed);
4. the report: ``final_metrics.json`` (``eval``: the P_* scores at thresholds 0.5 and,
   prefixed ``tuned_``, tuned), ``heads/`` (the heads' run of the generic loop: its
   checkpoints, ``metrics.jsonl`` and curves), ``predictions.npz`` (validation outputs), ``report.md`` with P_VA, P_EXPR, P_AU and
   P_MTL = P_VA + P_EXPR + P_AU at AU thresholds 0.5 and tuned (Table 6), per-AU F1 and
   thresholds (Table 3), per-class F1 (Table 4), CCC (Table 5), the chance level, and
   plots (`affectjax.methods.emotieffnet.mtl_plots`: per-head losses by phase, AU F1 before/after tuning,
   per-class F1, confusion matrix, valence/arousal scatter).

As in the paper, thresholds and blend weight are tuned on the split they are reported on
(validation), so the "tuned" row is an optimistic upper bound.

Chance level: P_VA 0 (a constant prediction has CCC 0), P_EXPR of uniform random guessing
(E[F1_c] = 2 p_c / (C p_c + 1) for class prior p_c), P_AU of predicting every AU present
(F1 = 2 p / (1 + p), the best constant prediction).

    python train.py --config configs/mtl_heads_synthfaces.py --workdir runs/mtl_heads \\
        --config.features.workdir=runs/quickstart
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import time
from typing import Any, Mapping

import jax.numpy as jnp
import numpy as np

from affectjax import balancing
from affectjax import labels
from affectjax import metrics as metrics_lib
from affectjax import registry
from affectjax import tuning
from affectjax.methods.emotieffnet import features
from affectjax.methods.emotieffnet import mtl_heads
from affectjax.methods.emotieffnet import mtl_plots
from affectjax.methods.emotieffnet import pretrain
from affectjax.train import inference
from affectjax.train import loop
from affectjax.train import setup
from affectjax.train.errors import ConfigError, DataError

EXPRESSIONS = labels.EXPRESSIONS
AUS = labels.AUS
EXPERTS = ("none", "backbone")


def score(va_pred: np.ndarray, expr_scores: np.ndarray, au_scores: np.ndarray,
          labels: Mapping[str, np.ndarray], *, au_thresholds: Any = 0.5) -> dict[str, Any]:
    """ABAW scores of predictions (labels missing per task are excluded).

    Args:
      va_pred: (N, 2) valence, arousal.
      expr_scores: (N, 8) expression scores (argmax decides).
      au_scores: (N, 12) AU probabilities.
      labels: ``expr``, ``va``, ``va_mask``, ``au`` as in `affectjax.methods.emotieffnet.features`.
      au_thresholds: scalar or (12,) thresholds.

    Returns:
      ``P_VA``, ``P_EXPR``, ``P_AU``, ``P_MTL``, ``CCC_V``, ``CCC_A`` (floats) and
      ``expr_f1`` (8,), ``au_f1`` (12,) lists, ``confusion_matrix``.
    """
    thresholds = np.broadcast_to(np.asarray(au_thresholds, np.float32), (au_scores.shape[1],))
    pred = np.argmax(expr_scores, -1)
    out = metrics_lib.abaw_mtl_score(labels["va"], va_pred, labels["expr"], pred, labels["au"],
                                     au_scores, va_mask=np.asarray(labels["va_mask"], bool),
                                     au_threshold=thresholds)
    result = {k: float(v) for k, v in out.items()}
    cm = np.asarray(metrics_lib.confusion_matrix(labels["expr"], pred, expr_scores.shape[1]))
    result["expr_f1"] = np.asarray(metrics_lib.f1_per_class_from_cm(cm), float).tolist()
    result["au_f1"] = np.asarray(metrics_lib.binary_f1(labels["au"], au_scores,
                                                       thresholds=thresholds), float).tolist()
    result["confusion_matrix"] = cm.tolist()
    return result


def chance_level(labels: Mapping[str, np.ndarray], num_expressions: int = 8) -> dict[str, float]:
    """P_VA, P_EXPR, P_AU and P_MTL of chance predictions (see the module docstring)."""
    expr = np.asarray(labels["expr"]).reshape(-1)
    expr = expr[expr >= 0]
    prior = np.bincount(expr, minlength=num_expressions) / max(len(expr), 1)
    p_expr = float(np.mean(2 * prior / (num_expressions * prior + 1)))
    au = np.asarray(labels["au"])
    f1 = []
    for k in range(au.shape[1]):
        col = au[:, k][au[:, k] >= 0]
        p = float(np.mean(col == 1)) if col.size else 0.0
        f1.append(2 * p / (1 + p) if p > 0 else 0.0)
    p_au = float(np.mean(f1))
    return {"P_VA": 0.0, "P_EXPR": p_expr, "P_AU": p_au, "P_MTL": p_expr + p_au}


def expert_scores(name: str, arrays: Mapping[str, np.ndarray],
                  num_expressions: int = 8) -> np.ndarray | None:
    """The expression scores of the blending expert `name` (None for ``none``)."""
    if name not in EXPERTS:
        raise registry.unknown_name_error("tuning.expert", name, EXPERTS)
    if name == "none":
        return None
    z = np.asarray(arrays["logits"], np.float64)[:, :num_expressions]
    z = np.exp(z - z.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def tune_and_score(pred: Mapping[str, np.ndarray], arrays: Mapping[str, np.ndarray], *,
                   expert: str = "none") -> dict[str, Any]:
    """Scores at thresholds 0.5, tunes AU thresholds and the expert blend, scores again.

    Args:
      pred: `affectjax.methods.emotieffnet.mtl_heads.predict` output on the validation split.
      arrays: that split's features and labels.
      expert: a key of `EXPERTS`.

    Returns:
      ``{"threshold_0.5", "tuned", "thresholds", "au_f1_before", "au_f1_after",
      "blend_weight", "blend_scores"}``; ``tuned`` uses the tuned thresholds and the
      tuned blend (w = 1 when there is no expert).
    """
    base = score(pred["va"], pred["expr"], pred["au"], arrays)
    th = tuning.tune_au_thresholds(pred["au"], arrays["au"])
    expr = np.asarray(pred["expr"], np.float64)
    other = expert_scores(expert, arrays, expr.shape[1])
    weight, curve = 1.0, []
    if other is not None:
        result = tuning.tune_blend_weight(expr, other, arrays["expr"], metric="f1_macro")
        weight, curve = result.weight, result.scores.tolist()
        expr = tuning.blend(expr, other, weight)
    tuned = score(pred["va"], expr, pred["au"], arrays, au_thresholds=th.thresholds)
    return {"threshold_0.5": base, "tuned": tuned, "thresholds": th.thresholds.tolist(),
            "au_f1_before": th.f1_before.tolist(), "au_f1_after": th.f1_after.tolist(),
            "expert": expert, "blend_weight": float(weight), "blend_scores": curve}


def markdown(results: Mapping[str, Any], chance: Mapping[str, float], title: str) -> str:
    """The report as Markdown (Tables 3-6 of the paper for one model)."""
    base, tuned = results["threshold_0.5"], results["tuned"]
    lines = [f"# {title}", "", "| model | AU thresholds | P_MTL | P_VA | P_EXPR | P_AU |",
             "|---|---|---|---|---|---|",
             "| chance | - | {P_MTL:.3f} | {P_VA:.3f} | {P_EXPR:.3f} | {P_AU:.3f} |".format(**chance),
             "| MTL heads | 0.5 | {P_MTL:.3f} | {P_VA:.3f} | {P_EXPR:.3f} | {P_AU:.3f} |"
             .format(**base)]
    blend = (f" + {results['expert']} blend (w = {results['blend_weight']:.1f})"
             if results["expert"] != "none" else "")
    lines.append(f"| MTL heads{blend} | tuned | {tuned['P_MTL']:.3f} | {tuned['P_VA']:.3f} | "
                 f"{tuned['P_EXPR']:.3f} | {tuned['P_AU']:.3f} |")
    lines += ["", "## Action units (F1)", "", "| | " + " | ".join(AUS) + " |",
              "|---" * (len(AUS) + 1) + "|"]
    for name, row in (("F1, threshold 0.5", results["au_f1_before"]),
                      ("best threshold", results["thresholds"]),
                      ("F1, best threshold", results["au_f1_after"])):
        lines.append(f"| {name} | " + " | ".join(f"{v:.2f}" for v in row) + " |")
    lines += ["", "## Expressions (F1 per class, thresholds 0.5, no blend)", "",
              "| " + " | ".join(EXPRESSIONS) + " | P_EXPR |", "|---" * 9 + "|",
              "| " + " | ".join(f"{v:.4f}" for v in base["expr_f1"])
              + f" | {base['P_EXPR']:.4f} |", "", "## Valence and arousal", "",
              "| CCC valence | CCC arousal | P_VA |", "|---|---|---|",
              f"| {base['CCC_V']:.4f} | {base['CCC_A']:.4f} | {base['P_VA']:.4f} |", ""]
    return "\n".join(lines)


def check_config(config: Any) -> None:
    """Resolves the pipeline's names and paths before any work (one-line `UserError`s).

    Checks the heads' model, the balancer, the phases, the tuning expert and the backbone
    weights (``features.checkpoint`` or ``features.workdir``, at most one, existing; the
    ``backbone`` expert needs a converted checkpoint's head in ABAW expression order with
    all 8 classes: `affectjax.convert.meta_head_order` reads its ``meta.json``).
    """

    with setup.user_errors():
        mtl_heads.MTL_HEADS.build_model(config)
        bcfg = (config.balancer.to_dict() if hasattr(config.balancer, "to_dict")
                else dict(config.balancer))
        balancing.create(bcfg.pop("name"), **bcfg)
        setup.build_phases(config, mtl_heads.MTL_HEADS.groups, 1)
        expert = config.get("tuning", {}).get("expert", "none")
        if expert not in EXPERTS:
            raise ConfigError(registry.unknown_name_message("config.tuning.expert", expert,
                                                            EXPERTS))
        checkpoint = config.features.get("checkpoint", "")
        workdir = config.features.get("workdir", "")
    if checkpoint and workdir:
        raise ConfigError("config.features: give either checkpoint or workdir, not both")
    if checkpoint and not os.path.isdir(checkpoint):
        raise DataError(f"config.features.checkpoint={checkpoint}: no such directory (convert "
                        "one with python -m affectjax.convert)")
    meta_path = os.path.join(checkpoint, "meta.json") if checkpoint else ""
    if meta_path and not os.path.isfile(meta_path):
        raise DataError(f"config.features.checkpoint={checkpoint}: no meta.json (not written "
                        "by python -m affectjax.convert)")
    if meta_path and expert == "backbone":
        meta = features.require_abaw_head(checkpoint, "config.features.checkpoint")
        n = meta.get("model_kwargs", {}).get("num_expressions", 8)
        if n != 8:
            raise ConfigError(f"config.features.checkpoint={checkpoint} has {n} expression "
                              "logits; the backbone expert needs the 8 ABAW ones (a 7-class "
                              "head has no Other): use --config.tuning.expert=none")
    if workdir and not os.path.isdir(workdir):
        raise DataError(f"config.features.workdir={workdir}: no such directory (train the "
                        "backbone first, e.g. python train.py --config configs/quickstart.py "
                        f"--workdir {workdir})")


def pretrain_backbone(config: Any, workdir: str) -> Any:
    """Stage 0 (``config.pretrain.enabled``): trains the backbone in ``<workdir>/backbone``.

    The backbone's run is ``config.pretrain.config`` (an ``emotieffnet`` config such as
    ``configs/quickstart.py``, e.g. with ``loss.tasks = "expr"`` for the expressions-only
    baseline of paper 1's Table 2) at the pipeline's seed, through the generic loop; a
    finished run is reused. Returns `config` with ``features.workdir`` pointing at it
    (unchanged when pretraining is off).
    """

    stage = config.get("pretrain", None)
    if stage is None or not stage.get("enabled", False):
        return config
    if config.features.get("checkpoint", "") or config.features.get("workdir", ""):
        raise ConfigError("config.pretrain.enabled trains the backbone itself: leave "
                          "config.features.checkpoint and config.features.workdir empty")
    backbone = copy.deepcopy(stage.config)
    backbone.seed = config.seed
    run_dir = os.path.join(workdir, "backbone")
    if not os.path.exists(os.path.join(run_dir, "final_metrics.json")):
        print(f"pretrain: training the backbone ({backbone.loss.tasks}) in {run_dir}",
              flush=True)
        loop.train_and_evaluate(backbone, run_dir, pretrain.EMOTIEFFNET)
    config = copy.deepcopy(config)
    config.features.workdir = run_dir
    return config


def _backbone_eval(run_dir: str) -> dict[str, Any] | None:
    """The backbone run's own final evaluation (None for a converted checkpoint)."""
    path = os.path.join(run_dir, "final_metrics.json") if run_dir else ""
    if not path or not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f).get("eval")


def _backbone_weights(config: Any) -> dict[str, str]:
    """The backbone's weights as absolute paths (``checkpoint`` or ``workdir``), recorded in
    ``final_metrics.json`` so that the run predicts from any working directory."""
    fcfg = config.features
    return {k: os.path.abspath(fcfg[k]) for k in ("checkpoint", "workdir") if fcfg.get(k, "")}


def predictor(config: Any, workdir: str, *, best: bool) -> inference.Inference:
    """``predictor`` of an ``mtl_heads`` run (`affectjax.train.inference`): the frozen
    backbone, then the heads, with the run's tuned AU thresholds and expert blend.

    ``expr_probs`` is the heads' softmax, blended with the backbone's own expression
    softmax when the run tuned a blend (``tuning.expert = "backbone"``); ``au_probs`` are
    the AU head's sigmoids, thresholded at the tuned per-AU thresholds. The heads are
    their final weights, the ones the report and the tuned thresholds describe, whatever
    `best` says (separately trained heads have no common best step); the backbone is the
    one the features came
    from.
    """
    path = os.path.join(workdir, "final_metrics.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{workdir}: no final_metrics.json (the mtl_heads pipeline "
                                "has not finished in this directory)")
    with open(path) as f:
        final = json.load(f)
    weights = final.get("backbone_weights")
    if weights is None:  # a run written before backbone_weights was recorded
        weights = {k: config.features.get(k, "") for k in ("checkpoint", "workdir")}
        if config.get("pretrain", {}).get("enabled", False):
            weights = {"workdir": os.path.join(workdir, "backbone")}
    for key, value in weights.items():
        if value and not os.path.exists(value):
            raise FileNotFoundError(f"{workdir}: its backbone {key} {value} does not exist")
    size, mean, std = inference.data_normalisation(config.data)
    backbone, backbone_vars, origin = features.load_backbone(  # random: the same init
        config.backbone, checkpoint=weights.get("checkpoint", ""),
        workdir=weights.get("workdir", ""), sample=np.zeros((1, size, size, 3), np.float32),
        seed=config.get("seed", 0))
    heads = mtl_heads.MTL_HEADS.build_model(config)
    del best
    heads_vars, heads_origin = inference.restore_variables(os.path.join(workdir, "heads"),
                                                           best=False)
    weight = float(final.get("blend_weight", 1.0))
    blend = final.get("expert", "none") == "backbone" and weight != 1.0

    def apply(variables, images):
        outputs, inter = backbone.apply(variables["backbone"], images, train=False)
        logits = outputs["logits"]
        out, _ = heads.apply(variables["heads"], inter["embedding"], logits, train=False)
        expr = out["expr"].astype(jnp.float32)
        if blend:
            expert = inference.softmax(logits[:, :expr.shape[-1]])
            expr = weight * expr + (1.0 - weight) * expert
        return {"expr_probs": expr, **inference.split_va(out["va"]),
                "au_probs": out["au"].astype(jnp.float32)}

    thresholds = np.asarray(final.get("thresholds", 0.5), np.float32)
    return inference.Inference(
        apply=apply, variables={"backbone": backbone_vars, "heads": heads_vars},
        image_size=size, mean=mean, std=std,
        names={"expr_probs": EXPRESSIONS, "au_probs": AUS},
        thresholds={"au_probs": thresholds}, origin=f"{origin} + {heads_origin}")


def run_pipeline(config: Any, workdir: str) -> dict[str, Any]:
    """Features -> heads -> tuning -> report (module docstring); returns final_metrics.

    The ``mtl_heads`` method's ``pipeline``: ``python train.py --config
    configs/mtl_heads_synthfaces.py`` runs it. Features are cached in
    ``config.features.cache_dir`` (default ``<workdir>/features``) and reused by a rerun
    with the same backbone, data and weights; everything is seeded, so a rerun gives the
    same metrics.

    Args:
      config: an ``mtl_heads`` config (``configs/mtl_heads_*.py``).
      workdir: output directory.

    Returns:
      The content of ``final_metrics.json``, plus ``plots`` (paths).

    Raises:
      UserError: a bad config value, missing data or backbone weights (one line).
    """

    t0 = time.perf_counter()
    os.makedirs(workdir, exist_ok=True)
    config = pretrain_backbone(config, workdir)
    check_config(config)
    with setup.user_errors():
        train_split, eval_split = config.data.train_split, config.data.eval_split
        cache = config.features.get("cache_dir", "") or os.path.join(workdir, "features")
        data = features.extract_splits(config, cache, splits=(train_split, eval_split))
        print(f"features: {len(data[train_split]['expr'])} {train_split} and "
              f"{len(data[eval_split]['expr'])} {eval_split} faces in {cache}", flush=True)
    val = data[eval_split]
    heads = mtl_heads.train_heads(config, data[train_split], evaluation=val,
                                  workdir=os.path.join(workdir, "heads"))
    pred = mtl_heads.predict(heads.model, heads.variables, val)
    results = tune_and_score(pred, val, expert=config.get("tuning", {}).get("expert", "none"))
    chance = chance_level(val)
    base, tuned = results["threshold_0.5"], results["tuned"]
    scalars = {k: float(v) for k, v in base.items() if np.ndim(v) == 0}
    scalars.update({f"tuned_{k}": float(v) for k, v in tuned.items() if np.ndim(v) == 0})
    final = {"method": "mtl_heads", "eval_split": eval_split,
             "num_train": int(len(data[train_split]["expr"])), "num_eval": int(len(val["expr"])),
             "eval": scalars, "best": {"metric": "P_MTL", "mode": "max",
                                       "value": scalars["P_MTL"], "step": heads.final["step"]},
             "chance": chance, **results, "train": heads.history[-1] if heads.history else None,
             "backbone": _backbone_eval(config.features.get("workdir", "")),
             "backbone_weights": _backbone_weights(config),
             "steps": heads.final["step"], "seconds": round(time.perf_counter() - t0, 2)}
    with open(os.path.join(workdir, "final_metrics.json"), "w") as f:
        json.dump(final, f, indent=2, sort_keys=True)
    with open(os.path.join(workdir, "report.md"), "w") as f:
        f.write(markdown(results, chance, f"MTL heads on {config.data.name} ({eval_split})"))
    final["plots"] = mtl_plots.write_plots(os.path.join(workdir, "plots"), heads.history,
                                           results, chance, pred, val, aus=AUS,
                                           expressions=EXPRESSIONS)
    np.savez(os.path.join(workdir, "predictions.npz"), **pred)
    b, t, c = final["threshold_0.5"], final["tuned"], final["chance"]
    print(f"{eval_split}: P_MTL {b['P_MTL']:.3f} (tuned {t['P_MTL']:.3f}; chance "
          f"{c['P_MTL']:.3f}) P_VA {b['P_VA']:.3f} P_EXPR {b['P_EXPR']:.3f} (tuned "
          f"{t['P_EXPR']:.3f}) P_AU {b['P_AU']:.3f} (tuned {t['P_AU']:.3f}) in "
          f"{final['seconds']:.0f} s -> {workdir}/report.md", flush=True)
    return final


# The registered ``mtl_heads`` method: the heads' Method with this module's pipeline.
MTL_HEADS_PIPELINE = dataclasses.replace(mtl_heads.MTL_HEADS, pipeline=run_pipeline,
                                         predictor=predictor)
