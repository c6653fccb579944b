"""The MT-EmotiEffNet training loss (Savchenko, ABAW4 2022, eq. 1)."""

from typing import Any

import jax

from affectjax.losses.classification import weighted_cross_entropy
from affectjax.losses.regression import va_ccc_loss


def emotieffnet_loss(
    expr_logits: Any,
    va_pred: Any,
    *,
    expr_labels: Any,
    va_target: Any,
    va_mask: Any | None = None,
    class_weights: Any | None = None,
    ddof: int = 0,
    eps: float = 0.0,
) -> jax.Array:
    r"""Joint expression + valence/arousal loss of MT-EmotiEffNet.

    .. math::
        L = 1 - \tfrac12(\mathrm{CCC}(z_V, y_V) + \mathrm{CCC}(z_A, y_A))
            + \frac{\sum_i w_{y_i} CE_i}{\sum_i w_{y_i}},
        \qquad w_c = \max_k N_k / N_c

    The cross-entropy is the weight-normalised mean of PyTorch
    `CrossEntropyLoss(weight=...)`, as the authors train it. Valence and arousal are the
    raw outputs of the last two units (no tanh). `ddof=1` reproduces the authors' CCC
    (unbiased variances, no epsilon); the default is the ABAW metric's population form.

    Args:
      expr_logits: (B, C) expression logits.
      va_pred: (B, 2) predicted [valence, arousal].
      expr_labels: (B,) integer expression labels, -1 = missing.
      va_target: (B, 2) target [valence, arousal].
      va_mask: optional (B,) or (B, 2) mask of rows with valid VA targets.
      class_weights: optional (C,) class weights, e.g. `class_balanced_weights(counts)`.
      ddof: delta degrees of freedom of the CCC variances (0 or 1).
      eps: added to each CCC denominator.

    Returns:
      A scalar.

    References:
      Savchenko, "MT-EmotiEffNet for multi-task human affective behavior analysis and
      learning from synthetic data", ABAW4 (ECCV workshops) 2022, eq. (1).

    Example:
      >>> import jax.numpy as jnp
      >>> va = jnp.array([[0.1, 0.5], [0.3, -0.2], [-0.4, 0.0]])
      >>> logits = jnp.zeros((3, 8))
      >>> round(float(emotieffnet_loss(logits, va, expr_labels=jnp.array([0, 3, -1]),
      ...                              va_target=va)), 4)
      2.0794
    """
    va = va_ccc_loss(va_pred, va_target, where=va_mask, ddof=ddof, eps=eps)
    expr = weighted_cross_entropy(
        expr_logits, expr_labels, class_weights=class_weights, normalize="weights"
    )
    return va + expr
