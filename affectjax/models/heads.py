"""MT-EmotiEffNet multi-task MLP heads on frozen features (paper 1, Sec. 2.1 and 3.2, Fig. 1).

The frozen MT-EmotiEffNet gives each face a D-dimensional embedding ``x`` (1280 for
EfficientNet-B0) and 10 logits ``l`` (8 expression scores, valence, arousal). Three heads
read them:

* VA: 2 units, tanh (valence, arousal in [-1, 1]);
* EXPR: 8 units, softmax over the ABAW classes;
* AU: 12 units, sigmoid (AU1, 2, 4, 6, 7, 10, 12, 15, 23, 24, 25, 26).

Each head chooses its input: ``"logits"``, ``"embedding"`` or ``"both"`` (their
concatenation), the paper's Table 2 ablation. The authors' best wiring ("our model",
Table 2) feeds the logits alone to VA and both features to EXPR and AU; with
``va_feeds_heads`` the VA head's output is also concatenated to the EXPR and AU inputs
(Fig. 1). A head is a stack of ``hidden`` ReLU layers (none: one fully-connected layer as
in the paper) and its output layer.

    heads = MTLHeads(va_input="logits", expr_input="both", au_input="both")
    variables = heads.init(rng, embedding, logits)
    outputs, intermediates = heads.apply(variables, embedding, logits)

Outputs: ``va`` (B, 2) after tanh, ``expr_logits`` (B, 8), ``expr`` softmax (B, 8),
``au_logits`` (B, 12), ``au`` sigmoid (B, 12). Intermediates: ``l2`` = per head the sum
of its squared kernel weights (for the L2 penalty of the loss), ``inputs`` = each head's
input. Parameters live under ``va_head``, ``expr_head`` and ``au_head``.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from affectjax import labels
from affectjax import registry

INPUTS = ("logits", "embedding", "both")
TASKS = ("va", "expr", "au")


class MLPHead(nn.Module):
    """``hidden`` Dense+ReLU(+dropout) layers, then a Dense layer of ``features`` units.

    Attributes:
      features: output units.
      hidden: widths of the hidden layers (empty: a single fully-connected layer).
      dropout_rate: dropout after each hidden layer (training only).
    """

    features: int
    hidden: Sequence[int] = ()
    dropout_rate: float = 0.0

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
        """Returns ``(raw outputs (B, features), sum of squared kernel weights)``."""
        l2 = jnp.zeros((), jnp.float32)
        for i, width in enumerate(self.hidden):
            layer = nn.Dense(int(width), name=f"hidden_{i}")
            x = nn.relu(layer(x))
            l2 = l2 + jnp.sum(jnp.square(layer.variables["params"]["kernel"]))
            if self.dropout_rate > 0:
                x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        out = nn.Dense(self.features, name="out")
        y = out(x)
        l2 = l2 + jnp.sum(jnp.square(out.variables["params"]["kernel"]))
        return y, l2


def _check_input(name: str, value: str) -> str:
    if value not in INPUTS:
        raise ValueError(registry.unknown_name_message(name, value, INPUTS))
    return value


class MTLHeads(nn.Module):
    """The three MT-EmotiEffNet heads (see the module docstring).

    Attributes:
      va_input, expr_input, au_input: ``"logits"``, ``"embedding"`` or ``"both"``.
      va_feeds_heads: concatenate the VA output to the EXPR and AU inputs (Fig. 1).
      hidden: hidden widths of every head.
      dropout_rate: dropout on the hidden layers.
      num_expressions: EXPR units (8).
      num_aus: AU units (12).
    """

    va_input: str = "logits"
    expr_input: str = "both"
    au_input: str = "both"
    va_feeds_heads: bool = False
    hidden: Sequence[int] = ()
    dropout_rate: float = 0.0
    num_expressions: int = labels.NUM_EXPRESSIONS
    num_aus: int = labels.NUM_AUS

    def _features(self, name: str, choice: str, embedding: jax.Array,
                  logits: jax.Array) -> jax.Array:
        choice = _check_input(name, choice)
        if choice == "logits":
            return logits
        if choice == "embedding":
            return embedding
        return jnp.concatenate([embedding, logits], axis=-1)

    @nn.compact
    def __call__(self, embedding: jax.Array, logits: jax.Array,
                 train: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
        """Applies the heads.

        Args:
          embedding: (B, D) frozen backbone embeddings.
          logits: (B, L) frozen backbone logits (10 for MT-EmotiEffNet).
          train: enables dropout.

        Returns:
          ``(outputs, intermediates)`` as in the module docstring.
        """
        if embedding.ndim != 2 or logits.ndim != 2 or embedding.shape[0] != logits.shape[0]:
            raise ValueError(f"embedding (B, D) and logits (B, L) expected, got "
                             f"{embedding.shape} and {logits.shape}")
        embedding = embedding.astype(jnp.float32)
        logits = logits.astype(jnp.float32)
        make = lambda n, name: MLPHead(n, tuple(self.hidden), self.dropout_rate, name=name)
        va_in = self._features("va_input", self.va_input, embedding, logits)
        va_raw, l2_va = make(2, "va_head")(va_in, train)
        va = jnp.tanh(va_raw)
        expr_in = self._features("expr_input", self.expr_input, embedding, logits)
        au_in = self._features("au_input", self.au_input, embedding, logits)
        if self.va_feeds_heads:
            expr_in = jnp.concatenate([expr_in, va], axis=-1)
            au_in = jnp.concatenate([au_in, va], axis=-1)
        expr_logits, l2_expr = make(self.num_expressions, "expr_head")(expr_in, train)
        au_logits, l2_au = make(self.num_aus, "au_head")(au_in, train)
        outputs = {"va": va, "expr_logits": expr_logits,
                   "expr": jax.nn.softmax(expr_logits, axis=-1),
                   "au_logits": au_logits, "au": jax.nn.sigmoid(au_logits)}
        intermediates = {"l2": {"va": l2_va, "expr": l2_expr, "au": l2_au},
                         "inputs": {"va": va_in, "expr": expr_in, "au": au_in}}
        return outputs, intermediates


def create_heads(**kwargs: Any) -> MTLHeads:
    """`MTLHeads` with checked input choices (a bad one raises naming the attribute)."""
    heads = MTLHeads(**kwargs)
    for name in ("va_input", "expr_input", "au_input"):
        _check_input(name, getattr(heads, name))
    return heads
