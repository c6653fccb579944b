"""Backbones and task models, created by name.

    model = affectjax.models.create("efficientnet_b0", num_classes=8)
    variables = model.init(rng, images_nhwc, train=False)      # {"params", "batch_stats"}
    outputs, intermediates = model.apply(variables, images_nhwc, train=False)
    (outputs, intermediates), new_state = model.apply(
        variables, images_nhwc, train=True, mutable=["batch_stats"], rngs={"dropout": key})

Every model returns `(outputs, intermediates)`: `outputs["logits"]` (B, num_classes) in
float32, `intermediates["embedding"]` the pooled pre-classifier features, and per-stage
feature maps `stem`, `stage_0`, ... (EfficientNet also `features`, the head conv output).
The dense-prediction models differ: `fcdensenet` gives per-pixel `logits` (B, H, W,
num_classes) (none with `num_classes=0`) and the maps `down_<r>`, `bottleneck`, `up_<r>`,
`features`; `ifan` gives `"<task>/<iteration>"` and `"<task>"` predictions (landmarks,
parsing, emotion) and no intermediates; `fusion` takes text, audio and visual sequences
(`apply(variables, text, audio, visual, train=...)`) and gives `{task: logits}` and the
intermediates `representation`, `ef`/`lf` and `lf_<modality>`.

| name | model | embedding |
|---|---|---|
| `efficientnet_b0/b1/b2` | timm flavour: symmetric padding, BN eps 1e-5 | 1280 / 1280 / 1408 |
| `tf_efficientnet_b0/b1/b2` | TensorFlow "same" padding, BN eps 1e-3 | 1280 / 1280 / 1408 |
| `efficientnet_tiny` | 4 blocks, for tests | 64 |
| `resnet18` | torchvision layout, `BasicBlock` x (2, 2, 2, 2) | 512 |
| `resnet34` | torchvision layout, `BasicBlock` x (3, 4, 6, 3) | 512 |
| `resnet50` | torchvision layout, `Bottleneck` x (3, 4, 6, 3) ("v1.5": stride on the 3x3) | 2048 |
| `emotieffnet` | MT-EmotiEffNet: backbone + Linear(features -> 8 + 2) | as its backbone |
| `fcdensenet` | FC-DenseNet (Tiramisu), iFAN configuration; task-wise BN, feedback inputs | (per pixel) |
| `ifan` | iFAN (Li et al., ACM MM 2017): FC-DenseNet + task decoders, re-encoders, feedback | (none) |
| `fusion` | EF / LF / EF-LF with AVG, bi-LSTM or Transformer encoders (Dai et al., 2021) | `representation` |
| `hard_sharing` | any backbone above (``backbone=``) + one Dense head per task (``heads=``) | as its backbone |

Image inputs are NHWC float images, normalised by the caller (ImageNet mean/std).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import flax.linen as nn

from affectjax import registry
from affectjax.models.efficientnet import EFFICIENTNET_NAMES, EfficientNet, efficientnet
from affectjax.models.emotieffnet import EmotiEffNet, emotieffnet, make_feature_fn
from affectjax.models.hard_sharing import HardSharing, hard_sharing
from affectjax.models.fcdensenet import FCDenseNet, TaskBatchNorm, fcdensenet
from affectjax.models.fusion import Fusion, fusion
from affectjax.models.ifan import IFAN, ifan
from affectjax.models.resnet import ResNet, resnet18, resnet34, resnet50

MODELS: dict[str, Callable[..., nn.Module]] = {
    **{name: functools.partial(efficientnet, name) for name in EFFICIENTNET_NAMES},
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
    "emotieffnet": emotieffnet,
    "fcdensenet": fcdensenet,
    "ifan": ifan,
    "fusion": fusion,
    "hard_sharing": hard_sharing,
}


def create(name: str, **kwargs: Any) -> nn.Module:
    """Creates a registered model.

    Args:
        name: a key of `MODELS`.
        **kwargs: module attributes to override, e.g. `num_classes`, `drop_rate`,
            `drop_path_rate`, `width_multiplier`, `depth_multiplier`, `dtype`; for
            `emotieffnet` also `backbone` and `num_expressions`; for `fcdensenet` and
            `ifan` their module attributes; for `fusion` its module attributes (`fusion`,
            `encoder`, `tasks`, `modalities`, sizes).

    Returns:
        The (unbound) `flax.linen.Module`.

    Raises:
        KeyError: unknown name, listing the choices.
    """
    return registry.lookup(MODELS, name, "model")(**kwargs)


__all__ = [
    "MODELS",
    "create",
    "EfficientNet",
    "EmotiEffNet",
    "FCDenseNet",
    "Fusion",
    "HardSharing",
    "IFAN",
    "ResNet",
    "TaskBatchNorm",
    "make_feature_fn",
]
