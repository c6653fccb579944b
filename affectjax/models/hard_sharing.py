"""Hard parameter sharing: one backbone of `affectjax.models`, one linear head per task.

The multi-task model of the EMA loss-balancing paper (paper 5, "Experiments"): a shared
ResNet-50 (Aff-Wild2, AffectNet) or ResNet-18 with "a dense layer of 40 neurons" (CelebA)
and a head per task on the pooled embedding. Any registered image backbone serves
(`backbone` names it, `backbone_kwargs` are its `models.create` arguments); it is built
without its classifier (``num_classes=0``) and its pooled ``embedding`` feeds every head.

    model = affectjax.models.create("hard_sharing", backbone="resnet18",
                                    heads=(("va", 2), ("expr", 8), ("au", 12)))
    outputs, intermediates = model.apply(variables, images, train=False)

Outputs: ``{head: (B, width)}`` raw outputs (the method applies tanh, softmax or sigmoid);
intermediates: the backbone's (``embedding`` and its feature maps). Parameters live under
``backbone`` and ``head_<name>``.
"""

from __future__ import annotations

from typing import Any, Mapping

import flax.linen as nn
import jax.numpy as jnp


# Registered models that are not image classifiers with a pooled embedding.
NOT_BACKBONES = ("hard_sharing", "fusion", "ifan", "fcdensenet", "emotieffnet")


class HardSharing(nn.Module):
    """A shared backbone and one Dense head per entry of `heads` (module docstring).

    Attributes:
      backbone: the backbone module, built without a classifier (`hard_sharing` builds it
        from a registered name); its parameters live under ``backbone``.
      heads: ``((name, width), ...)``.
      dropout: dropout rate on the embedding before the heads (0 = none).
    """

    backbone: nn.Module
    heads: tuple[tuple[str, int], ...]
    dropout: float = 0.0

    @nn.compact
    def __call__(self, images: jnp.ndarray, *, train: bool):
        _, intermediates = self.backbone(images, train=train)
        x = intermediates["embedding"].astype(jnp.float32)
        if self.dropout:
            x = nn.Dropout(self.dropout, deterministic=not train)(x)
        outputs = {name: nn.Dense(width, name=f"head_{name}")(x) for name, width in self.heads}
        return outputs, intermediates


def hard_sharing(*, backbone: str, heads: Any, backbone_kwargs: Mapping[str, Any] | None = None,
                 dropout: float = 0.0) -> HardSharing:
    """`HardSharing` from plain values (a dict of heads, a dict of backbone arguments)."""
    from affectjax import models  # pylint: disable=import-outside-toplevel
    choices = [n for n in models.MODELS if n not in NOT_BACKBONES]
    if backbone not in choices:
        raise ValueError(f"backbone={backbone!r}: choose an image classifier of "
                         f"affectjax.models: {choices}")
    heads = tuple(heads.items()) if isinstance(heads, Mapping) else tuple(map(tuple, heads))
    if not heads or any(int(w) < 1 for _, w in heads):
        raise ValueError(f"heads={heads!r}: give (name, width >= 1) pairs")
    net = models.create(backbone, **dict(backbone_kwargs or {}), num_classes=0)
    return HardSharing(net, tuple((str(n), int(w)) for n, w in heads), float(dropout))
