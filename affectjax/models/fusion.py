"""The multimodal fusion model of paper 3: EF, LF or EF-LF with one linear head per task.

Dai et al., "Weakly-supervised Multi-task Learning for Multimodal Affect Recognition"
(2021), Sec. 4.1 and Fig. 2, eq. 2; sizes in Tables 7-8. Word-aligned text (GloVe, 300),
audio (COVAREP, 74) and visual (OpenFace, 35) sequences are fused

* early (EF): the used modalities concatenated per step, one encoder;
* late (LF): one encoder per used modality (its own ``lf_hidden_dims[i]``,
  ``lf_num_heads[i]``, ``lf_ff_dims[i]``), the encodings concatenated;
* both (EF-LF, the paper's hybrid): ``concat(EF, LF)`` -> Dense(in -> in // 2) -> ReLU ->
  Dropout(``dropout``). This follows the authors' related code, Linear(in -> in/2) -> ReLU
  -> Dropout 0.1 -> Linear, read so that the last Linear is the task heads: the shared
  representation is the output of the dropout.

The encoders (AVG, bi-LSTM, Transformer) and their readings are in
`affectjax.models.fusion_encoders`. The shared representation f_Wb(x) feeds one
``nn.Dense`` per task (``head_<task>``, eq. 2). ``modalities`` picks the inputs the model
reads (all three are still passed): ``("text",)`` or ``("audio", "visual")`` give the
unimodal / non-verbal models of the sarcasm study.

    model = affectjax.models.create("fusion", fusion="eflf", encoder="lstm",
                                    tasks=(("emotion", 4), ("sentiment", 2), ("sarcasm", 2)))
    variables = model.init(rng, text, audio, visual, train=False)      # {"params"}
    outputs, intermediates = model.apply(variables, text, audio, visual, train=False)

Inputs: ``text``, ``audio``, ``visual`` (B, S, F_m) float (any feature sizes) and
optionally ``mask`` (B, S) bool, True at valid steps. By default a step is valid when any
feature of any of the three inputs is non-zero there (`default_mask`; the MulT pickles and
SynthAffect pad with zeros at the start, but nothing assumes where the padding is). The
mask is a property of the utterance, so a model reading fewer modalities still takes it
from all three inputs (it carries no gradient).

Outputs: ``{task: logits (B, K)}`` in float32. Intermediates: ``representation`` (B, D),
``ef`` and/or ``lf`` (the branch representations) and ``lf_<modality>`` per LF encoder.
No BatchNorm: ``variables`` holds ``params`` only.

``lf_*`` tuples hold one entry per modality of ``modalities`` (in that order); a tuple of
three entries is also read as (text, audio, visual), so one config serves every subset.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from affectjax.models.fusion_encoders import (LSTM_READOUTS, POSITIONS, AvgEncoder, LSTMEncoder,
                                              TransformerEncoder, check_choice)

Dtype = Any

MODALITIES = ("text", "audio", "visual")
FUSIONS = ("ef", "lf", "eflf")
ENCODERS = ("avg", "lstm", "transformer")


def default_mask(text: jax.Array, audio: jax.Array, visual: jax.Array) -> jax.Array:
    """(B, S) bool: True where any feature of any modality is non-zero."""
    return (jnp.any(text != 0, axis=-1) | jnp.any(audio != 0, axis=-1)
            | jnp.any(visual != 0, axis=-1))


def _per_modality(name: str, values: Sequence[Any], modalities: tuple[str, ...]) -> tuple:
    """``values`` resolved to one entry per used modality (see the module docstring)."""
    values = tuple(values)
    if len(values) == len(modalities):
        return values
    if len(values) == len(MODALITIES):
        return tuple(values[MODALITIES.index(m)] for m in modalities)
    raise ValueError(f"{name}={values} needs one entry per modality of {modalities} "
                     f"(or one per {MODALITIES})")


class Fusion(nn.Module):
    """EF / LF / EF-LF fusion with AVG, bi-LSTM or Transformer encoders and task heads.

    Attributes:
      fusion: ``"ef"``, ``"lf"`` or ``"eflf"``.
      encoder: ``"avg"``, ``"lstm"`` or ``"transformer"``.
      tasks: ``((name, num_outputs), ...)``: one linear head ``head_<name>`` each.
      modalities: the inputs read, a non-empty subset of ("text", "audio", "visual").
      hidden_dim: EF encoder size: AVG hidden layer (0: none) / LSTM units per direction /
        Transformer width.
      lf_hidden_dims: the same per LF encoder.
      num_heads, lf_num_heads: Transformer heads (EF, per LF encoder).
      ff_dim, lf_ff_dims: Transformer feed-forward widths (EF, per LF encoder).
      num_layers: Transformer layers.
      dropout: dropout rate everywhere (encoders, EF-LF layer).
      lstm_readout: ``"final"`` (h_n of both directions) or ``"last_step"``.
      positions: Transformer positions, ``"sinusoidal"`` or ``"learned"``.
      max_len: learned positions' table size (sequence length at most).
      dtype: computation dtype (parameters and logits stay float32).
    """

    fusion: str = "eflf"
    encoder: str = "lstm"
    tasks: tuple[tuple[str, int], ...] = (("emotion", 4),)
    modalities: tuple[str, ...] = MODALITIES
    hidden_dim: int = 32
    lf_hidden_dims: tuple[int, ...] = (32, 16, 16)
    num_heads: int = 4
    lf_num_heads: tuple[int, ...] = (4, 2, 2)
    ff_dim: int = 64
    lf_ff_dims: tuple[int, ...] = (64, 32, 32)
    num_layers: int = 2
    dropout: float = 0.1
    lstm_readout: str = "final"
    positions: str = "sinusoidal"
    max_len: int = 512
    dtype: Dtype = jnp.float32

    def check(self) -> tuple[tuple[int, int, int], ...]:
        """Validates the attributes; returns (hidden, heads, ff) per LF encoder.

        Raises:
          ValueError: an unknown name (listing the choices), bad modalities or tasks, lf
            tuples without one entry per modality, or a Transformer width that is not a
            multiple of its heads.
        """
        check_choice("fusion", self.fusion, FUSIONS)
        check_choice("encoder", self.encoder, ENCODERS)
        check_choice("LSTM readout", self.lstm_readout, LSTM_READOUTS)
        check_choice("positional encoding", self.positions, POSITIONS)
        mods = tuple(self.modalities)
        if not mods or len(set(mods)) != len(mods):
            raise ValueError(f"modalities={mods}: give distinct names from {MODALITIES}")
        for m in mods:
            check_choice("modality", m, MODALITIES)
        names = [t[0] for t in self.tasks]
        if len(set(names)) != len(names) or any(int(k) < 1 for _, k in self.tasks):
            raise ValueError(f"tasks={self.tasks}: give distinct (name, num_outputs >= 1) pairs")
        lf = tuple(zip(*(_per_modality(n, getattr(self, n), mods)
                         for n in ("lf_hidden_dims", "lf_num_heads", "lf_ff_dims"))))
        sizes = []
        if self.fusion in ("ef", "eflf"):
            sizes.append(("hidden_dim", self.hidden_dim, self.num_heads))
        if self.fusion in ("lf", "eflf"):
            sizes += [(f"lf_hidden_dims[{m}]", d, h) for m, (d, h, _) in zip(mods, lf)]
        for what, dim, heads in sizes:
            if self.encoder != "avg" and dim <= 0:
                raise ValueError(f"{what}={dim}: the {self.encoder} encoder needs a positive size")
            if dim < 0:
                raise ValueError(f"{what}={dim} must be >= 0")
            if self.encoder == "transformer" and (heads <= 0 or dim % heads):
                raise ValueError(f"{what}={dim} must be divisible by its number of heads {heads}")
        return lf

    def _encoder(self, dim: int, heads: int, ff: int, name: str) -> nn.Module:
        if self.encoder == "avg":
            return AvgEncoder(dim, self.dropout, self.dtype, name=name)
        if self.encoder == "lstm":
            return LSTMEncoder(dim, self.dropout, self.lstm_readout, self.dtype, name=name)
        return TransformerEncoder(dim, heads, ff, self.num_layers, self.dropout, self.positions,
                                  self.max_len, self.dtype, name=name)

    @nn.compact
    def __call__(self, text: jax.Array, audio: jax.Array, visual: jax.Array, *,
                 mask: jax.Array | None = None,
                 train: bool = False) -> tuple[dict[str, jax.Array], dict[str, jax.Array]]:
        """Encodes, fuses and classifies.

        Args:
          text, audio, visual: (B, S, F_m) sequences (all three, whichever are used).
          mask: (B, S) bool, True at valid steps; default `default_mask`.
          train: enables dropout (rng collection ``"dropout"``).

        Returns:
          ``(outputs, intermediates)`` as in the module docstring.
        """
        lf_sizes = self.check()
        inputs = {"text": text, "audio": audio, "visual": visual}
        for name, x in inputs.items():
            if x.ndim != 3 or x.shape[:2] != text.shape[:2]:
                raise ValueError(f"text, audio and visual must be (B, S, F) with the same B and S, "
                                 f"got {[v.shape for v in inputs.values()]} ({name})")
        if mask is None:
            mask = default_mask(text, audio, visual)
        if mask.shape != text.shape[:2]:
            raise ValueError(f"mask must be (B, S) = {text.shape[:2]}, got {mask.shape}")
        mask = mask.astype(bool)
        used = [inputs[m] for m in self.modalities]
        inter: dict[str, jax.Array] = {}
        branches = []
        if self.fusion in ("ef", "eflf"):
            ef = self._encoder(self.hidden_dim, self.num_heads, self.ff_dim, "ef")(
                jnp.concatenate(used, axis=-1), mask, train)
            inter["ef"] = ef
            branches.append(ef)
        if self.fusion in ("lf", "eflf"):
            parts = []
            for m, x, (dim, heads, ff) in zip(self.modalities, used, lf_sizes):
                inter[f"lf_{m}"] = self._encoder(dim, heads, ff, f"lf_{m}")(x, mask, train)
                parts.append(inter[f"lf_{m}"])
            inter["lf"] = jnp.concatenate(parts, axis=-1)
            branches.append(inter["lf"])
        rep = jnp.concatenate(branches, axis=-1)
        if self.fusion == "eflf":
            rep = nn.relu(nn.Dense(rep.shape[-1] // 2, dtype=self.dtype, name="eflf")(rep))
            rep = nn.Dropout(self.dropout, deterministic=not train)(rep)
        inter["representation"] = rep
        outputs = {t: nn.Dense(int(k), dtype=self.dtype, name=f"head_{t}")(rep).astype(jnp.float32)
                   for t, k in self.tasks}
        return outputs, inter


def _as_tasks(tasks: Mapping[str, int] | Sequence[Sequence[Any]]) -> tuple[tuple[str, int], ...]:
    items = tasks.items() if isinstance(tasks, Mapping) else tasks
    return tuple((str(name), int(k)) for name, k in items)


def fusion(**kwargs: Any) -> Fusion:
    """`Fusion` with checked attributes (a bad one raises a ValueError at creation).

    ``tasks`` may be a dict ``{name: num_outputs}``; ``modalities`` a comma-separated
    string; sequences become tuples (flax modules must be hashable).
    """
    if "tasks" in kwargs:
        kwargs["tasks"] = _as_tasks(kwargs["tasks"])
    if isinstance(kwargs.get("modalities"), str):
        kwargs["modalities"] = tuple(m.strip() for m in kwargs["modalities"].split(",")
                                     if m.strip())
    for key in ("modalities", "lf_hidden_dims", "lf_num_heads", "lf_ff_dims"):
        if key in kwargs:
            kwargs[key] = tuple(kwargs[key])
    model = Fusion(**kwargs)
    model.check()
    return model
