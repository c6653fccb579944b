"""Landmark metrics: inter-ocular normalised mean error (NME) and failure rate.

iFAN paper (Sec. 4.1.3, MTFL): for an image with L landmarks,

    NME = (1 / L) Σ_l ||p_l - t_l||_2 / ||t_0 - t_1||_2,

where t_0, t_1 are the two eye centres of the target (batch contract order:
left eye, right eye, nose, left mouth corner, right mouth corner). An image
fails when its NME exceeds a threshold (10 % in the paper). The streaming
statistic `LandmarkStats` holds the image count, the NME sum and the failure
count.

Per landmark (the iFAN paper's Table 1 columns and Fig. 5): landmark l of an
image has the normalised error e_l = ||p_l - t_l||_2 / ||t_0 - t_1||_2; its NME
is the mean of e_l over the images and its failure rate the fraction of images
with e_l > threshold (`nme_per_landmark`, `failure_rate_per_landmark`; streaming
statistics `LandmarkPointStats`, `landmark_point_*`). The mean of the
per-landmark NMEs equals `nme`; the per-landmark failure rates are NOT the
image-level `failure_rate`, which thresholds the image's mean error.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from affectjax.metrics import _checks


class LandmarkStats(NamedTuple):
    """Streaming landmark statistics (scalars)."""
    n: jax.Array
    nme_sum: jax.Array
    failures: jax.Array


def _validate(y_true: Any, y_pred: Any,
              where: Any) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Checks the inputs; returns ``(pred, target, mask)`` for the traced code."""
    pred = _checks.as_array(y_pred, "y_pred")
    target = _checks.as_array(y_true, "y_true")
    _checks.check_rank(target, (3,), "y_true")
    if target.shape[1] < 2 or target.shape[2] != 2:
        raise ValueError(
            f"y_true: expected shape (N, L >= 2, 2) with eye centres first, got "
            f"{target.shape}")
    _checks.check_same_shape(target, pred, "y_true", "y_pred")
    if where is None:
        mask = jnp.ones(target.shape[:1], bool)
    else:
        mask = _checks.as_array(where, "where")
        if mask.shape != target.shape[:1]:
            raise ValueError(
                f"where: expected shape {target.shape[:1]} (one flag per image), "
                f"got {mask.shape}")
        mask = mask.astype(bool)
    _check_eyes(target, mask)
    dtype = jnp.promote_types(jnp.result_type(pred, target), jnp.float32)
    return pred.astype(dtype), target.astype(dtype), mask


def _check_eyes(target: jax.Array, mask: jax.Array) -> None:
    """Raises ValueError if a present image has coinciding eye centres (host only)."""
    if not (_checks.is_concrete(target) and _checks.is_concrete(mask)):
        return
    t = np.asarray(target, np.float64)
    iod = np.linalg.norm(t[:, 0] - t[:, 1], axis=-1)
    bad = np.asarray(mask) & ~(iod > 0)
    if bad.any():
        raise ValueError(
            f"y_true: image {int(np.argmax(bad))} has zero inter-ocular "
            f"distance (points 0 and 1 coincide)")


@jax.jit
def _per_image(pred: jax.Array, target: jax.Array, mask: jax.Array) -> jax.Array:
    """Per-image NME, 0 for masked images (traced code)."""
    iod = jnp.linalg.norm(target[:, 0] - target[:, 1], axis=-1)
    err = jnp.mean(jnp.linalg.norm(pred - target, axis=-1), axis=-1)
    return jnp.where(mask, err / jnp.where(mask, iod, 1.0), 0.0)


@jax.jit
def _batch(pred: jax.Array, target: jax.Array, mask: jax.Array,
           threshold: jax.Array) -> tuple[jax.Array, LandmarkStats]:
    per = _per_image(pred, target, mask)
    stats = LandmarkStats(jnp.sum(mask, dtype=jnp.int32), jnp.sum(per),
                          jnp.sum(mask & (per > threshold), dtype=jnp.int32))
    return per, stats


def nme_per_item(y_true: Any, y_pred: Any, *, where: Any = None) -> jax.Array:
    """Inter-ocular NME of each image (iFAN paper, MTFL protocol).

    Args:
      y_true: (N, L, 2) target landmarks; points 0 and 1 are the eye centres
        (L = 5 in the batch contract).
      y_pred: (N, L, 2) predicted landmarks.
      where: optional (N,) bool, True for images with landmark labels.

    Returns:
      Shape (N,): each image's NME, 0 for masked images. On concrete input a
      present image whose eye centres coincide raises ValueError; under `jit` it
      gives inf or nan.
    """
    per, _ = _batch(*_validate(y_true, y_pred, where), 0.0)
    return per


def nme(y_true: Any, y_pred: Any, *, where: Any = None) -> jax.Array:
    """Mean inter-ocular normalised error over the images (iFAN paper, MTFL protocol).

    Arguments as in `nme_per_item`.

    Returns:
      A scalar: the mean NME over the unmasked images, 0 if none.
    """
    _, stats = _batch(*_validate(y_true, y_pred, where), 0.0)
    return landmark_finalize(stats)["nme"]


def failure_rate(y_true: Any, y_pred: Any, *, threshold: float = 0.1,
                 where: Any = None) -> jax.Array:
    """Fraction of (unmasked) images with NME > threshold (iFAN: 10 %); a scalar.

    Arguments as in `nme_per_item`.
    """
    _, stats = _batch(*_validate(y_true, y_pred, where), threshold)
    return landmark_finalize(stats)["failure_rate"]


def landmark_init() -> LandmarkStats:
    """Empty landmark statistics."""
    return LandmarkStats(jnp.zeros((), jnp.int32), jnp.zeros((), jnp.float32),
                         jnp.zeros((), jnp.int32))


def landmark_update(stats: LandmarkStats, y_true: Any, y_pred: Any, *,
                    threshold: float = 0.1, where: Any = None) -> LandmarkStats:
    """Adds one batch (arguments as in `nme`; failures use `threshold`)."""
    _, batch = _batch(*_validate(y_true, y_pred, where), threshold)
    return landmark_merge(stats, batch)


def landmark_merge(a: LandmarkStats, b: LandmarkStats) -> LandmarkStats:
    """Sums two sets of statistics."""
    return LandmarkStats(*(x + y for x, y in zip(a, b)))


@jax.jit
def landmark_finalize(stats: LandmarkStats) -> dict[str, jax.Array]:
    """{"nme": mean NME, "failure_rate": failures / n}; both 0 with no images."""
    n = jnp.maximum(stats.n, 1)
    ok = stats.n > 0
    return {"nme": jnp.where(ok, stats.nme_sum / n, 0.0),
            "failure_rate": jnp.where(ok, stats.failures / n, 0.0)}


class LandmarkPointStats(NamedTuple):
    """Streaming per-landmark statistics: image count, (L,) error sums, (L,) failures."""
    n: jax.Array
    error_sum: jax.Array
    failures: jax.Array


@jax.jit
def _point_batch(pred: jax.Array, target: jax.Array, mask: jax.Array,
                 threshold: jax.Array) -> LandmarkPointStats:
    """Per-landmark statistics of one batch (traced code)."""
    iod = jnp.linalg.norm(target[:, 0] - target[:, 1], axis=-1)
    err = jnp.linalg.norm(pred - target, axis=-1) / jnp.where(mask, iod, 1.0)[:, None]
    err = jnp.where(mask[:, None], err, 0.0)
    return LandmarkPointStats(jnp.sum(mask, dtype=jnp.int32), jnp.sum(err, axis=0),
                              jnp.sum(mask[:, None] & (err > threshold), axis=0,
                                      dtype=jnp.int32))


def nme_per_landmark(y_true: Any, y_pred: Any, *, where: Any = None) -> jax.Array:
    """Inter-ocular normalised error of each landmark, averaged over the images.

    iFAN paper, Table 1 (one column per MTFL landmark). Arguments as in `nme_per_item`.

    Returns:
      Shape (L,): mean over the unmasked images of ``||p_l - t_l|| / ||t_0 - t_1||``;
      zeros if no image is unmasked. Its mean over landmarks equals `nme`.
    """
    pred, target, mask = _validate(y_true, y_pred, where)
    return landmark_point_finalize(_point_batch(pred, target, mask, 0.0))["nme"]


def failure_rate_per_landmark(y_true: Any, y_pred: Any, *, threshold: float = 0.1,
                              where: Any = None) -> jax.Array:
    """Fraction of images whose landmark l has normalised error > threshold, per l.

    iFAN paper, Fig. 5 (failure rate of each landmark at 10 %). Arguments as in
    `nme_per_item`.

    Returns:
      Shape (L,); zeros if no image is unmasked.
    """
    pred, target, mask = _validate(y_true, y_pred, where)
    stats = _point_batch(pred, target, mask, threshold)
    return landmark_point_finalize(stats)["failure_rate"]


def landmark_point_init(num_landmarks: int = 5) -> LandmarkPointStats:
    """Empty per-landmark statistics for `num_landmarks` points."""
    return LandmarkPointStats(jnp.zeros((), jnp.int32),
                              jnp.zeros((num_landmarks,), jnp.float32),
                              jnp.zeros((num_landmarks,), jnp.int32))


def landmark_point_update(stats: LandmarkPointStats, y_true: Any, y_pred: Any, *,
                          threshold: float = 0.1, where: Any = None) -> LandmarkPointStats:
    """Adds one batch (arguments as in `nme_per_landmark`; failures use `threshold`)."""
    pred, target, mask = _validate(y_true, y_pred, where)
    if stats.error_sum.shape != target.shape[1:2]:
        raise ValueError(f"stats: for {stats.error_sum.shape[0]} landmarks, the batch has "
                         f"{target.shape[1]}")
    return landmark_point_merge(stats, _point_batch(pred, target, mask, threshold))


def landmark_point_merge(a: LandmarkPointStats, b: LandmarkPointStats) -> LandmarkPointStats:
    """Sums two sets of per-landmark statistics."""
    return LandmarkPointStats(*(x + y for x, y in zip(a, b)))


@jax.jit
def landmark_point_finalize(stats: LandmarkPointStats) -> dict[str, jax.Array]:
    """{"nme": (L,) mean errors, "failure_rate": (L,) failures / n}; zeros with no images."""
    n = jnp.maximum(stats.n, 1)
    ok = stats.n > 0
    return {"nme": jnp.where(ok, stats.error_sum / n, 0.0),
            "failure_rate": jnp.where(ok, stats.failures / n, 0.0)}
