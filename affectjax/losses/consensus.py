"""KL divergence between softmax outputs, and the CCT co-training loss.

Consensual Collaborative Training (Gera & Balasubramanian) trains M networks on the same
batch with a supervised cross-entropy term and a pairwise KL consensus term whose
weight `lam` ramps up over training (`affectjax.schedules.cct_lambda`). The M networks'
logits arrive stacked as one (M, B, C) array, as produced by a `jax.vmap`-ed apply over
stacked parameters; the gradient of `cct_loss` flows into every network on both sides
of each KL term (no stop-gradient, as in the authors' code).

`bernoulli_consensus` (per-AU sigmoid outputs) and `squared_consensus` (real-valued
outputs such as valence/arousal) are affectjax's extension of the consensus term to the
tasks the paper's conclusion names as future work; the paper itself defines only the
softmax KL of eq. (3).
"""

import functools
from typing import Any

import jax
import jax.numpy as jnp

from affectjax.losses import _checks
from affectjax.losses.classification import softmax_cross_entropy


def kl_div(p_logits: Any, q_logits: Any, *, axis: int = -1) -> jax.Array:
    r"""Per-example :math:`KL(\mathrm{softmax}(p) \,\|\, \mathrm{softmax}(q))`, unreduced.

    Computed from `log_softmax` of both inputs for numerical stability:
    :math:`\sum_c p_c (\log p_c - \log q_c)`.

    Args:
      p_logits: logits of the reference distribution p, floating, rank >= 1.
      q_logits: logits of q, the same shape as `p_logits`.
      axis: the class axis.

    Returns:
      The divergence (>= 0), of shape `p_logits.shape` without `axis`.

    References:
      Gera & Balasubramanian, "Consensual Collaborative Training and Knowledge
      Distillation Based Facial Expression Recognition Under Noisy Annotations", eq. (3).

    Example:
      >>> import jax.numpy as jnp
      >>> p = jnp.array([[1.0, 0.0], [0.0, 0.0]])
      >>> [round(v, 4) for v in kl_div(p, jnp.zeros((2, 2))).tolist()]
      [0.1109, 0.0]
    """
    p_logits = _checks.as_float(p_logits, "p_logits")
    q_logits = _checks.as_float(q_logits, "q_logits")
    _checks.check_min_rank(p_logits, "p_logits", 1)
    _checks.check_same_shape(p_logits, q_logits, "p_logits", "q_logits")
    if not -p_logits.ndim <= axis < p_logits.ndim:
        raise ValueError(f"axis {axis} is out of range for p_logits of shape {p_logits.shape}")
    return _kl_div(p_logits, q_logits, axis=axis % p_logits.ndim)


@functools.partial(jax.jit, static_argnames="axis")
def _kl_div(p_logits: jax.Array, q_logits: jax.Array, *, axis: int) -> jax.Array:
    log_p = jax.nn.log_softmax(p_logits, axis=axis)
    log_q = jax.nn.log_softmax(q_logits, axis=axis)
    return (jnp.exp(log_p) * (log_p - log_q)).sum(axis)


def _check_stacked(
    stacked_logits: Any,
    name: str = "stacked_logits",
    layout: str = "(M, B, C) (networks, batch, classes)",
) -> jax.Array:
    stacked_logits = _checks.as_float(stacked_logits, name)
    if stacked_logits.ndim != 3:
        raise ValueError(f"{name} must have shape {layout}, got {stacked_logits.shape}")
    return stacked_logits


def _batch_mask(where: Any | None, batch: int) -> jax.Array:
    if where is None:
        return jnp.ones((batch,), bool)
    where = jnp.asarray(where)
    _checks.check_rank(where, "where", 1)
    return _checks.as_mask(where, (batch,))


def kl_consensus(stacked_logits: Any, *, where: Any | None = None) -> jax.Array:
    r"""Pairwise consensus :math:`\sum_j \sum_{k \ne j} \mathrm{mean}_b KL(p_k \| p_j)`.

    Every ordered pair of distinct networks counts once, so M networks give M(M-1)
    terms; M = 1 gives 0.

    Args:
      stacked_logits: (M, B, C) logits of M networks on the same batch.
      where: optional (B,) mask; the batch mean runs over True items only, and no True
        item gives 0 with finite gradients.

    Returns:
      A scalar >= 0.

    References:
      Gera & Balasubramanian, CCT, eq. (3) (L_cons).

    Example:
      >>> import jax.numpy as jnp
      >>> logits = jnp.array([[[1.0, 0.0]], [[0.0, 0.0]]])
      >>> round(float(kl_consensus(logits)), 4)
      0.2311
    """
    stacked_logits = _check_stacked(stacked_logits)
    mask = _batch_mask(where, stacked_logits.shape[1])
    return _kl_consensus(stacked_logits, mask)


@jax.jit
def _kl_consensus(stacked_logits: jax.Array, mask: jax.Array) -> jax.Array:
    log_p = jax.nn.log_softmax(stacked_logits, axis=-1)
    # pair[k, j, b] = KL(p_k || p_j); the diagonal is exactly 0 (log_p - log_p).
    pair = (jnp.exp(log_p)[:, None] * (log_p[:, None] - log_p[None, :])).sum(-1)
    per_item = jnp.where(mask, pair.sum((0, 1)), 0)
    return _checks.safe_divide(per_item.sum(), mask.sum().astype(per_item.dtype))


def bernoulli_consensus(stacked_logits: Any, *, where: Any | None = None) -> jax.Array:
    r"""Multi-label consensus: pairwise Bernoulli KL between per-AU sigmoid outputs.

    .. math::
      \sum_j \sum_{k \ne j} \mathrm{mean}_b \sum_a
      KL(\mathrm{Bern}(\sigma(z_{k,b,a})) \,\|\, \mathrm{Bern}(\sigma(z_{j,b,a})))

    The analogue of `kl_consensus` for M networks with one sigmoid output per action unit:
    with :math:`p = \sigma(z_k)`, :math:`q = \sigma(z_j)`, each term is
    :math:`p (\log p - \log q) + (1 - p)(\log(1 - p) - \log(1 - q))`, computed from
    `log_sigmoid` of the logits for numerical stability. Every ordered pair of distinct
    networks counts once (M(M-1) terms; M = 1 gives 0); the gradient flows into both
    sides of each term (no stop-gradient). The term needs no labels.

    This is affectjax's extension, not part of CCT: the paper defines only the softmax
    KL consensus of eq. (3) and names co-training for AU detection as future work.

    Args:
      stacked_logits: (M, B, A) per-AU logits of M networks on the same batch.
      where: optional (B,) mask; the batch mean runs over True items only, and no True
        item gives 0 with finite gradients.

    Returns:
      A scalar >= 0.

    References:
      Gera & Balasubramanian, "Consensual Collaborative Training and Knowledge
      Distillation Based Facial Expression Recognition Under Noisy Annotations", eq. (3)
      (the softmax form this generalises); its conclusion names AU detection as future
      work.

    Example:
      >>> import jax.numpy as jnp
      >>> logits = jnp.array([[[0.0, 2.0]], [[0.0, 0.0]]])
      >>> round(float(bernoulli_consensus(logits)), 4)
      0.7616
    """
    stacked_logits = _check_stacked(
        stacked_logits, layout="(M, B, A) (networks, batch, action units)"
    )
    mask = _batch_mask(where, stacked_logits.shape[1])
    return _bernoulli_consensus(stacked_logits, mask)


@jax.jit
def _bernoulli_consensus(stacked_logits: jax.Array, mask: jax.Array) -> jax.Array:
    log_p = jax.nn.log_sigmoid(stacked_logits)  # log sigma(z)
    log_not_p = jax.nn.log_sigmoid(-stacked_logits)  # log (1 - sigma(z))
    # pair[k, j, b] = sum_a KL(Bern(p_k) || Bern(p_j)); the diagonal is exactly 0.
    pair = (
        jnp.exp(log_p)[:, None] * (log_p[:, None] - log_p[None, :])
        + jnp.exp(log_not_p)[:, None] * (log_not_p[:, None] - log_not_p[None, :])
    ).sum(-1)
    per_item = jnp.where(mask, pair.sum((0, 1)), 0)
    return _checks.safe_divide(per_item.sum(), mask.sum().astype(per_item.dtype))


def squared_consensus(stacked_preds: Any, *, where: Any | None = None) -> jax.Array:
    r"""Regression consensus: pairwise squared difference between real-valued outputs.

    .. math::
      \sum_j \sum_{k \ne j} \mathrm{mean}_b \sum_d (y_{k,b,d} - y_{j,b,d})^2

    The analogue of `kl_consensus` for M networks with real-valued outputs such as
    valence and arousal. Every ordered pair of distinct networks counts once, so each
    unordered pair contributes twice (for M = 2 the result is
    :math:`2\,\mathrm{mean}_b \sum_d (y_0 - y_1)^2`); M = 1 gives 0. The gradient flows
    into both networks of each pair (no stop-gradient). The term needs no labels.

    This is affectjax's extension, not part of CCT: the paper defines only the softmax
    KL consensus of eq. (3) and names co-training for valence/arousal as future work.

    Args:
      stacked_preds: (M, B, D) real-valued predictions of M networks on the same batch.
      where: optional (B,) mask; the batch mean runs over True items only, and no True
        item gives 0 with finite gradients.

    Returns:
      A scalar >= 0.

    References:
      Gera & Balasubramanian, CCT, eq. (3) (the softmax form this replaces); its
      conclusion names valence/arousal estimation as future work.

    Example:
      >>> import jax.numpy as jnp
      >>> preds = jnp.array([[[1.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 2.0]]])
      >>> float(squared_consensus(preds))
      5.0
      >>> float(squared_consensus(preds, where=jnp.array([True, False])))
      2.0
    """
    stacked_preds = _check_stacked(
        stacked_preds, "stacked_preds", "(M, B, D) (networks, batch, outputs)"
    )
    mask = _batch_mask(where, stacked_preds.shape[1])
    return _squared_consensus(stacked_preds, mask)


@jax.jit
def _squared_consensus(stacked_preds: jax.Array, mask: jax.Array) -> jax.Array:
    # pair[k, j, b] = sum_d (y_k - y_j)^2; the diagonal is exactly 0.
    pair = ((stacked_preds[:, None] - stacked_preds[None, :]) ** 2).sum(-1)
    per_item = jnp.where(mask, pair.sum((0, 1)), 0)
    return _checks.safe_divide(per_item.sum(), mask.sum().astype(per_item.dtype))


def cct_loss(
    stacked_logits: Any,
    labels: Any,
    *,
    lam: Any,
    where: Any | None = None,
    scale: float = 1.0,
) -> jax.Array:
    r"""CCT loss :math:`(1 - \lambda) \sum_j \mathrm{mean}_b CE(p_j, y) + \lambda L_{cons}`.

    The supervised term of each network is the plain mean of its cross-entropy over
    items with a label (label != -1 and `where`); the consensus term (`kl_consensus`)
    averages over items with `where` True, labelled or not. Everything masked gives 0.

    The authors' code additionally multiplies both terms by 0.33; pass `scale=0.33` to
    reproduce it (`scale` multiplies the whole loss; the paper has no such factor).

    Args:
      stacked_logits: (M, B, C) logits of M networks on the same batch.
      labels: (B,) integer labels, -1 = missing.
      lam: the consensus weight in [0, 1]; a Python float or a traced scalar, usually
        `affectjax.schedules.cct_lambda(epoch, ...)`.
      where: optional (B,) mask.
      scale: a constant factor on the whole loss (1.0 = paper, 0.33 = authors' code).

    Returns:
      A scalar.

    References:
      Gera & Balasubramanian, CCT, eqs. (1)-(3).

    Example:
      >>> import jax.numpy as jnp
      >>> logits = jnp.array([[[2.0, 0.0]], [[0.0, 0.0]]])
      >>> round(float(cct_loss(logits, jnp.array([0]), lam=0.5)), 4)
      0.7908
    """
    stacked_logits = _check_stacked(stacked_logits)
    labels = _checks.as_int(labels, "labels")
    num_nets, batch, _ = stacked_logits.shape
    if labels.shape != (batch,):
        raise ValueError(f"labels must have shape ({batch},), got {labels.shape}")
    lam = jnp.asarray(lam)
    if lam.ndim != 0:
        raise ValueError(f"lam must be a scalar, got shape {lam.shape}")
    mask = _batch_mask(where, batch)
    per_item = softmax_cross_entropy(
        stacked_logits, jnp.broadcast_to(labels, (num_nets, batch))
    )
    return _cct_loss(stacked_logits, per_item, labels, mask, lam, scale)


@jax.jit
def _cct_loss(
    stacked_logits: jax.Array,
    per_item: jax.Array,
    labels: jax.Array,
    mask: jax.Array,
    lam: jax.Array,
    scale: Any,
) -> jax.Array:
    labelled = (labels != -1) & mask
    per_net = jnp.where(labelled, per_item, 0).sum(-1)
    supervised = _checks.safe_divide(per_net.sum(), labelled.sum().astype(per_net.dtype))
    consensus = _kl_consensus(stacked_logits, mask)
    return scale * ((1 - lam) * supervised + lam * consensus)
