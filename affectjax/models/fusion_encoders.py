"""Sequence encoders of the fusion baselines: AVG, bi-LSTM and Transformer (paper 3, Sec. 4.1).

Dai et al., "Weakly-supervised Multi-task Learning for Multimodal Affect Recognition"
(2021), Sec. 4.1: "the AVG model just takes the mean of the input vectors as the output
vector. For LSTM, we take the output vector at the last time step as the representation
of the whole input sequence. For Transformer, ... we prepend a [CLS] token to the input
sequence and use the output embedding at that position." Tables 7-8 give the sizes
(AVG ``hidden_dim``; LSTM ``lstm_dim``, bidirectional, one layer, dropout 0.1;
Transformer 2 layers, ``heads``, ``ff_dim``, dropout 0.1).

Every encoder maps ``x`` (B, S, F) and ``mask`` (B, S) bool (True = a valid step) to one
vector per sequence, ``(B, output_dim)``. Padding may sit anywhere (the MulT pickles pad at
the start): only the mask says which steps count, so a padded step never changes the
representation and gets zero gradient, and a row without valid steps gives a finite
vector. Readings chosen here:

* AVG (`AvgEncoder`): the masked mean over valid steps, then Dense(hidden_dim) -> ReLU ->
  Dropout (the tables give AVG a hidden size); ``hidden_dim=0`` is the mean itself.
* LSTM (`LSTMEncoder`): one bidirectional layer of `nn.OptimizedLSTMCell` (``hidden_dim``
  units per direction). Each row's valid steps are moved to the front (a stable per-row
  gather) and ``seq_lengths`` passed, so padding never reaches the states. The
  representation (``readout="final"``) is PyTorch's ``h_n``: the forward state after the
  last valid step and the backward state after the first valid step, concatenated, then
  dropout. ``readout="last_step"`` reads the paper's words literally: the bidirectional
  output at the last valid step (the forward half is the same, the backward half has seen
  that step only). Weights and biases start as ``torch.nn.LSTM``'s, U(-1/sqrt(hidden),
  1/sqrt(hidden)) (not flax's orthogonal recurrent kernels); flax's cell has one bias per
  gate (PyTorch two), so 4 * ``hidden_dim`` fewer parameters per direction. An empty row
  gives zeros (the initial state).
* Transformer (`TransformerEncoder`): Dense(hidden_dim) projection, a learned [CLS] vector
  prepended, positional encodings indexed by the count of valid steps so far (the [CLS] is
  position 0, the first valid step 1, whatever padding precedes it), dropout, then
  ``num_layers`` post-LN layers as PyTorch's ``nn.TransformerEncoderLayer`` default
  (`TransformerEncoderLayer`); the output at the [CLS] position. Positions are sinusoidal
  (Vaswani et al.; parameter-free, no length limit, not scaled by sqrt(d)) by default,
  ``positions="learned"`` uses a learned table of ``max_len`` + 1 rows (BERT's choice).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from affectjax import registry
from affectjax.models.layers import dense_init_uniform

Dtype = Any

LSTM_READOUTS = ("final", "last_step")
POSITIONS = ("sinusoidal", "learned")


def check_choice(what: str, value: Any, choices: tuple[str, ...]) -> None:
    """A ValueError listing `choices` when `value` is not one of them."""
    if value not in choices:
        raise ValueError(registry.unknown_name_message(what, value, choices))


def masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
    """Mean of ``x`` (B, S, F) over the steps where ``mask`` (B, S) is True; zeros if none."""
    m = mask.astype(x.dtype)[..., None]
    count = jnp.maximum(jnp.sum(m, axis=1), 1.0)
    return jnp.sum(x * m, axis=1) / count


def valid_first(x: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Moves each row's valid steps to the front, in order; returns ``(x', lengths)``.

    A stable per-row gather: the valid steps keep their order and the padded ones follow,
    so a recurrent pass with ``seq_lengths=lengths`` never sees padding before a valid step.
    """
    order = jnp.argsort(jnp.where(mask, 0, 1), axis=1, stable=True)
    x = jnp.take_along_axis(x, order[..., None], axis=1)
    return x, jnp.sum(mask, axis=1).astype(jnp.int32)


def sinusoidal_encoding(positions: jax.Array, dim: int) -> jax.Array:
    """Vaswani et al.'s encoding of integer ``positions`` (...,): sin on even, cos on odd."""
    half = (dim + 1) // 2
    inv_freq = np.exp(-np.log(10000.0) * (2.0 * np.arange(half)) / dim).astype(np.float32)
    angles = positions.astype(jnp.float32)[..., None] * inv_freq
    pe = jnp.stack([jnp.sin(angles), jnp.cos(angles)], axis=-1)
    return pe.reshape(*positions.shape, 2 * half)[..., :dim]


class AvgEncoder(nn.Module):
    """Masked mean over valid steps, then Dense -> ReLU -> Dropout (none if hidden_dim=0)."""

    hidden_dim: int = 32
    dropout: float = 0.1
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array, train: bool = False) -> jax.Array:
        h = masked_mean(x.astype(jnp.float32), mask).astype(self.dtype)
        if self.hidden_dim:
            h = nn.relu(nn.Dense(self.hidden_dim, dtype=self.dtype, name="hidden")(h))
            h = nn.Dropout(self.dropout, deterministic=not train)(h)
        return h


class LSTMEncoder(nn.Module):
    """Bidirectional one-layer LSTM, ``hidden_dim`` units per direction (output 2 * that)."""

    hidden_dim: int = 32
    dropout: float = 0.1
    readout: str = "final"
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array, train: bool = False) -> jax.Array:
        check_choice("LSTM readout", self.readout, LSTM_READOUTS)
        x, lengths = valid_first(x.astype(self.dtype), mask)
        init = dense_init_uniform(self.hidden_dim)  # torch.nn.LSTM: U(+-1/sqrt(hidden)) for all
        cell = lambda name: nn.OptimizedLSTMCell(
            self.hidden_dim, dtype=self.dtype, kernel_init=init, recurrent_kernel_init=init,
            bias_init=init, name=name)
        fwd = nn.RNN(cell("forward"), return_carry=True)
        bwd = nn.RNN(cell("backward"), return_carry=True, reverse=True, keep_order=True)
        (_, h_fwd), _ = fwd(x, seq_lengths=lengths)
        (_, h_bwd), out_bwd = bwd(x, seq_lengths=lengths)
        if self.readout == "last_step":  # backward output at the last valid step
            last = jnp.maximum(lengths - 1, 0)
            h_bwd = jnp.take_along_axis(out_bwd, last[:, None, None], axis=1)[:, 0]
        h = jnp.concatenate([h_fwd, h_bwd], axis=-1)
        h = jnp.where((lengths > 0)[:, None], h, jnp.zeros_like(h))  # empty row: initial state
        return nn.Dropout(self.dropout, deterministic=not train)(h)


class TransformerEncoderLayer(nn.Module):
    """PyTorch's ``nn.TransformerEncoderLayer`` default: post-LN, ReLU feed-forward.

    ``x = LN(x + Dropout(SelfAttention(x)))``, ``x = LN(x + Dropout(W2 Dropout(ReLU(W1 x))))``;
    attention dropout on the weights as PyTorch's; LayerNorm eps 1e-5; padded keys
    (``mask`` False) are never attended (``src_key_padding_mask``).
    """

    num_heads: int = 4
    ff_dim: int = 64
    dropout: float = 0.1
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array, train: bool = False) -> jax.Array:
        dim = x.shape[-1]
        drop = lambda y: nn.Dropout(self.dropout, deterministic=not train)(y)
        attn = nn.MultiHeadDotProductAttention(
            num_heads=self.num_heads, qkv_features=dim, out_features=dim,
            dropout_rate=self.dropout, deterministic=not train, dtype=self.dtype,
            name="self_attention")(x, x, mask=mask[:, None, None, :])
        x = nn.LayerNorm(epsilon=1e-5, dtype=self.dtype, name="norm1")(x + drop(attn))
        y = nn.relu(nn.Dense(self.ff_dim, dtype=self.dtype, name="linear1")(x))
        y = nn.Dense(dim, dtype=self.dtype, name="linear2")(drop(y))
        return nn.LayerNorm(epsilon=1e-5, dtype=self.dtype, name="norm2")(x + drop(y))


class TransformerEncoder(nn.Module):
    """Projection, [CLS] + positions, ``num_layers`` encoder layers; the [CLS] output."""

    hidden_dim: int = 32
    num_heads: int = 4
    ff_dim: int = 64
    num_layers: int = 2
    dropout: float = 0.1
    positions: str = "sinusoidal"
    max_len: int = 512
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array, train: bool = False) -> jax.Array:
        check_choice("positional encoding", self.positions, POSITIONS)
        if self.hidden_dim <= 0 or self.hidden_dim % self.num_heads:
            raise ValueError(f"Transformer width {self.hidden_dim} must be a positive multiple "
                             f"of its number of heads {self.num_heads}")
        batch, steps = mask.shape
        h = nn.Dense(self.hidden_dim, dtype=self.dtype, name="input_proj")(x.astype(self.dtype))
        cls = self.param("cls", nn.initializers.normal(0.02), (self.hidden_dim,), jnp.float32)
        h = jnp.concatenate([jnp.broadcast_to(cls.astype(h.dtype), (batch, 1, self.hidden_dim)), h],
                            axis=1)
        # [CLS] is position 0; a valid step's position is its rank among the valid steps.
        pos = jnp.concatenate([jnp.zeros((batch, 1), jnp.int32),
                               jnp.cumsum(mask, axis=1, dtype=jnp.int32)], axis=1)
        if self.positions == "learned":
            if steps > self.max_len:
                raise ValueError(f"sequence length {steps} exceeds max_len={self.max_len} of "
                                 f"the learned positions")
            pe = nn.Embed(self.max_len + 1, self.hidden_dim,
                          embedding_init=nn.initializers.normal(0.02), name="positions")(pos)
        else:
            pe = sinusoidal_encoding(pos, self.hidden_dim)
        h = nn.Dropout(self.dropout, deterministic=not train)(h + pe.astype(h.dtype))
        keys = jnp.concatenate([jnp.ones((batch, 1), bool), mask], axis=1)
        for i in range(self.num_layers):
            h = TransformerEncoderLayer(self.num_heads, self.ff_dim, self.dropout, self.dtype,
                                        name=f"layer_{i}")(h, keys, train)
        return h[:, 0]
