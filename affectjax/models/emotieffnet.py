"""MT-EmotiEffNet: an EfficientNet with one Linear(features -> 8 + 2) head.

Savchenko, "MT-EmotiEffNet for Multi-task Human Affective Behavior Analysis and Learning
from Synthetic Data" (ABAW4, ECCV Workshops 2022), Sec. 3.1: an EfficientNet-B0 (the
authors use timm's `tf_efficientnet_b0_ns`, TF "same" padding, BN eps 1e-3) whose
classifier is replaced by one dense layer with 8 expression logits followed by raw (no
tanh) valence and arousal, trained with loss eq. (1).

The parameters are exactly those of the backbone with `num_classes = num_expressions + 2`,
named as in timm (`classifier` is the joint head), so the authors' pickled model converts
with `affectjax.convert.from_timm(..., "emotieffnet")`.

Expression order: the authors' released checkpoints (e.g. `enet_b0_8_va_mtl`) were trained
with an ImageFolder-style `class_to_idx`, so their 8 logits are in **alphabetical order**
(Anger, Contempt, Disgust, Fear, Happiness, Neutral, Sadness, Surprise:
`affectjax.convert.RELEASED_EXPRESSIONS`, the `idx_to_class` of the authors' inference
code; the 7-class models drop Contempt). affectjax's trainer uses **ABAW order** (Neutral,
Anger, Disgust, Fear, Happiness, Sadness, Surprise, Other) for its own training; `python
-m affectjax.convert ... --head-order abaw` permutes the released head rows into ABAW order
(Contempt takes the place of Other; a 7-class head becomes the 7 ABAW classes before
Other, with no Other logit).

Outputs: `{"logits": (B, 10), "expr_logits": (B, 8), "va": (B, 2), "valence": (B,),
"arousal": (B,)}`; intermediates as `EfficientNet` (`embedding` is the 1280-d feature
vector the MTL heads of the paper's Sec. 3.2 consume together with `logits`).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import flax.linen as nn

from affectjax import labels
from affectjax.models.efficientnet import EfficientNet, efficientnet_config


class EmotiEffNet(EfficientNet):
    """EfficientNet whose classifier is the joint expression + valence/arousal head.

    Attributes:
        num_expressions: expression logits before the two VA outputs (8).
        (all `EfficientNet` attributes; `num_classes` must equal `num_expressions + 2`.)
    """

    num_expressions: int = labels.NUM_EXPRESSIONS

    def __call__(self, x: jax.Array, train: bool = False) -> tuple[dict, dict]:
        """Runs backbone and head; see the module docstring for the outputs."""
        if self.num_classes != self.num_expressions + 2:
            raise ValueError(
                f"num_classes ({self.num_classes}) must equal num_expressions + 2 ({self.num_expressions + 2})"
            )
        outputs, inter = super().__call__(x, train)
        logits = outputs["logits"]
        va = logits[:, self.num_expressions :]
        outputs = {
            "logits": logits,
            "expr_logits": logits[:, : self.num_expressions],
            "va": va,
            "valence": va[:, 0],
            "arousal": va[:, 1],
        }
        return outputs, inter


def emotieffnet(*, backbone: str = "tf_efficientnet_b0",
                num_expressions: int = labels.NUM_EXPRESSIONS, **kwargs: Any) -> EmotiEffNet:
    """Builds MT-EmotiEffNet on an EfficientNet backbone.

    Args:
        backbone: any of `efficientnet.EFFICIENTNET_NAMES` (default: the authors' flavour).
        num_expressions: number of expression logits (8).
        **kwargs: `EfficientNet` overrides (`drop_rate`, `drop_path_rate`, `dtype`, ...).

    Returns:
        The (unbound) flax module.
    """
    config = {**efficientnet_config(backbone), **kwargs}
    config["num_classes"] = kwargs.get("num_classes", num_expressions + 2)  # checked in __call__
    return EmotiEffNet(num_expressions=num_expressions, **config)


def make_feature_fn(model: nn.Module) -> Callable[[dict, jax.Array], dict]:
    """A jitted eval-mode feature extractor: `fn(variables, images) -> {"embedding", "logits"}`.

    These are the MT-EmotiEffNet features of the paper's Sec. 3.2 (the penultimate
    embedding x and the logits l), for any registered model.
    """

    @jax.jit
    def features(variables: dict, images: jax.Array) -> dict:
        outputs, inter = model.apply(variables, images, train=False)
        return {"embedding": inter["embedding"], "logits": outputs["logits"]}

    return features
