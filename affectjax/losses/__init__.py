"""Losses of the affectjax methods, in the style of `optax.losses`.

Per-example losses return unreduced arrays; reducing losses take masks via `where=` and
give 0 with finite gradients when everything is masked. Integer labels use -1 for
missing. Every function works under `jax.jit`, `jax.vmap` and `jax.grad`.
"""

from affectjax.losses.classification import sigmoid_binary_cross_entropy
from affectjax.losses.classification import softmax_cross_entropy
from affectjax.losses.classification import weighted_cross_entropy
from affectjax.losses.consensus import bernoulli_consensus
from affectjax.losses.consensus import cct_loss
from affectjax.losses.consensus import kl_consensus
from affectjax.losses.consensus import kl_div
from affectjax.losses.consensus import squared_consensus
from affectjax.losses.emotieffnet import emotieffnet_loss
from affectjax.losses.landmarks import landmark_distance
from affectjax.losses.regression import ccc
from affectjax.losses.regression import ccc_loss
from affectjax.losses.regression import va_ccc_loss
from affectjax.losses.weights import balanced_pos_weight
from affectjax.losses.weights import class_balanced_weights
from affectjax.losses.weights import sklearn_balanced_weights

__all__ = [
    "balanced_pos_weight",
    "bernoulli_consensus",
    "ccc",
    "ccc_loss",
    "cct_loss",
    "class_balanced_weights",
    "emotieffnet_loss",
    "kl_consensus",
    "kl_div",
    "landmark_distance",
    "sigmoid_binary_cross_entropy",
    "sklearn_balanced_weights",
    "softmax_cross_entropy",
    "squared_consensus",
    "va_ccc_loss",
    "weighted_cross_entropy",
]
