"""iFAN: the integrated face analytics network (landmarks, parsing, emotion with task feedback).

Li et al., "Integrated Face Analytics Networks through Cross-Dataset Hybrid Training" (ACM
MM 2017). An `FCDenseNet` backbone `f_S` (Sec. 4.1.2: 5+5 dense blocks of 3 layers,
growth 12) feeds one decoder per task; task-wise re-encoders turn each task's prediction
into a pyramid of maps that the task integrator feeds back into the backbone (eq. 2).
Eq. 4 iterates: iteration 0 is f_S(x) alone, iteration I >= 1 sees the re-encoded
predictions of iteration I - 1 of every task; all ITER + 1 iterations' predictions are
returned (eq. 5 sums their losses).

Decoders (Sec. 4.1.2; Keras style Dropout -> Dense): landmarks regress normalised
coordinates u from the deepest down-path block (8x8 at 128 px; the Dense gives x_1 ... x_L,
y_1 ... y_L as the released code), returned in pixels `(u + 0.5) * size`; parsing is a 1x1 conv on the final full-resolution features; emotion
classifies the bottleneck (4x4 at 128 px). Re-encoders: `affectjax.models.ifan_reencoders`.

Paper text vs the authors' released Keras inference code, and what is followed here:

* Integration: eq. 4 sums the tasks' re-encoded maps (`integration="sum"`, the default);
  Sec. 4.1.2 says the sum "is realized by feature concatenation" with the backbone stream,
  which is how the summed maps enter the backbone here. The released code concatenates
  every task's maps separately (`integration="concat"`).
* Merge points: as the released code, the full-resolution maps are concatenated to the
  image, after the first down block and to the final features; lower levels after the
  down block and before the transition up of their resolution (`FCDenseNet`).
* Iteration 0: eq. 4 has no feedback (`initial_feedback="zeros"`: zero maps of the right
  shapes, so iteration 0 does not depend on any re-encoder parameter); the released
  inference code starts from data-set-mean predictions (`initial_feedback="mean"`).
* Re-encoders: as the released code, plus a 3x3 conv level at full resolution (so every
  task has the same channel count per level); `reencoders=False` is the Sec. 4.3.2
  ablation (raw heat maps / probabilities average-pooled to each level, concatenated).

Outputs of `apply(variables, images, bn_set=..., initial=..., train=...)`: `(outputs, {})`,
outputs `"<task>/<I>"` for I = 0 ... ITER and `"<task>"` (= iteration ITER): `landmarks`
(B, L, 2) (x, y) pixels, `parsing` logits (B, H, W, C), `emotion` logits (B, C), float32.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import flax.linen as nn

from affectjax import registry
from affectjax.models.fcdensenet import Conv, FCDenseNet
from affectjax.models.ifan_reencoders import (LEVEL_FACTORS, ConvPyramid, DenseTiles, landmark_heatmaps,
                                              num_levels, raw_pyramid)

Dtype = Any

TASKS = ("landmarks", "parsing", "emotion")
INTEGRATIONS = ("sum", "concat")
INITIAL_FEEDBACKS = ("zeros", "mean")
LOOPS = ("unroll", "scan")


def _choice(what: str, value: Any, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(registry.unknown_name_message(what, value, choices))


class VectorDecoder(nn.Module):
    """Flatten -> Dropout -> Dense(features) (Keras default glorot-uniform kernel, zero bias)."""

    features: int
    dropout: float = 0.3
    dtype: Dtype | None = None
    prior: Sequence[float] | None = None  # zero kernel, this bias: start at the prior

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = nn.Dropout(self.dropout, deterministic=not train)(x.reshape(x.shape[0], -1))
        if self.prior is None:
            kernel_init, bias_init = nn.initializers.glorot_uniform(), nn.initializers.zeros
        else:
            prior = jnp.asarray(self.prior, jnp.float32)
            kernel_init = nn.initializers.zeros
            bias_init = lambda *_: prior  # noqa: E731
        return nn.Dense(self.features, dtype=self.dtype, kernel_init=kernel_init,
                        bias_init=bias_init, name="dense")(x).astype(jnp.float32)


class IFAN(nn.Module):
    """The iFAN model (eqs. 2-4); see the module docstring.

    Attributes:
        tasks: any non-empty subset of `TASKS`, kept in that order.
        num_iterations: ITER of eq. 4; iterations 0 ... ITER are run.
        num_blocks, layers_per_block, growth_rate, stem_features, upsample_features,
            num_bn_sets: the `FCDenseNet` backbone's (num_bn_sets: one BN set per data set).
        num_landmarks, num_parsing_classes, num_emotions: decoder outputs.
        heatmap_radius: landmark disk radius in pixels of the model input.
        decoder_dropout: dropout before the landmark and emotion Dense layers.
        reencoders: learnable re-encoders (False: the Sec. 4.3.2 ablation, raw maps
            average-pooled and concatenated whatever `integration` says).
        reencoder_widths: channels at R, R/4, R/8, R/16 (R = input size); levels that are
            not down-path resolutions of the backbone are dropped.
        integration: "sum" (eq. 4) or "concat" (the released code).
        initial_feedback: "zeros" (eq. 4) or "mean" (iteration 0 sees the re-encoded
            `initial` predictions, as the released inference code).
        loop: iterations 1 ... ITER as a Python loop ("unroll") or `nn.scan` ("scan", params
            broadcast, batch_stats carried); both give the same outputs and gradients.
            Jitted train-style value_and_grad of the sum of all outputs (batch 4, 64 px,
            num_blocks=4, other settings default) on 2 CPU cores, compile / run:
            ITER=2: unroll 22.9 s / 1.76 s, scan 29.5 s / 1.95 s;
            ITER=3: unroll 24.7 s / 2.49 s, scan 30.0 s / 2.59 s
            (scan ran 14.5 s per step before `kernels.conv_same`).
        landmark_prior: None (the Keras initialisation of the landmark Dense) or the L
            mean landmarks as (x, y) fractions of the input size, flattened: the landmark
            Dense then starts with a zero kernel and these means as its bias, so iteration
            0 starts at the data-set mean shape, the prediction the authors' inference
            code starts from. Measured on the 32 px miniature: with the Keras
            initialisation the flattened 8x8 features (8k inputs) put the first
            predictions about one image width away, and RMSprop's per-weight steps,
            summed over 8k inputs, keep them there (NME 10 after 80 steps at lr 1e-3).
        dtype: computation dtype (parameters, BN statistics and outputs float32).
    """

    tasks: Sequence[str] = TASKS
    num_iterations: int = 2
    num_blocks: int = 5
    layers_per_block: int = 3
    growth_rate: int = 12
    stem_features: int = 48
    upsample_features: int = 128
    num_bn_sets: int = 1
    num_landmarks: int = 5
    num_parsing_classes: int = 11
    num_emotions: int = 8
    heatmap_radius: float = 5.0
    decoder_dropout: float = 0.3
    reencoders: bool = True
    reencoder_widths: Sequence[int] = (16, 24, 48, 64)
    integration: str = "sum"
    initial_feedback: str = "zeros"
    loop: str = "unroll"
    landmark_prior: Sequence[float] | None = None
    dtype: Dtype | None = None

    def _landmark_prior(self) -> tuple[float, ...] | None:
        """The landmark Dense's initial bias from `landmark_prior` (L x 2 positions as
        fractions of the input size), in its layout u = (x_1..x_L, y_1..y_L) - 0.5; None
        keeps the Keras initialisation."""
        if self.landmark_prior is None:
            return None
        prior = np.asarray(self.landmark_prior, np.float64).reshape(self.num_landmarks, 2)
        return tuple(float(v) for v in (prior.T - 0.5).ravel())

    def setup(self) -> None:
        if not self.tasks or len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"tasks must be a non-empty subset of {list(TASKS)}, got {self.tasks!r}")
        for task in self.tasks:
            _choice("iFAN task", task, TASKS)
        _choice("iFAN integration", self.integration, INTEGRATIONS)
        _choice("iFAN initial_feedback", self.initial_feedback, INITIAL_FEEDBACKS)
        _choice("iFAN loop", self.loop, LOOPS)
        if len(self.reencoder_widths) != len(LEVEL_FACTORS):
            raise ValueError(f"reencoder_widths needs {len(LEVEL_FACTORS)} values, got {self.reencoder_widths!r}")
        if self.num_iterations < 0:
            raise ValueError(f"num_iterations must be >= 0, got {self.num_iterations}")
        self.order = tuple(t for t in TASKS if t in self.tasks)
        self.backbone = FCDenseNet(self.num_blocks, self.layers_per_block, self.growth_rate, self.stem_features,
                                   upsample_features=self.upsample_features, num_bn_sets=self.num_bn_sets,
                                   dtype=self.dtype)
        outputs = {"landmarks": 2 * self.num_landmarks, "parsing": self.num_parsing_classes,
                   "emotion": self.num_emotions}
        self.decoder = {
            t: Conv(outputs[t], 1, use_bias=True, dtype=self.dtype) if t == "parsing"
            else VectorDecoder(outputs[t], self.decoder_dropout, self.dtype,
                               self._landmark_prior() if t == "landmarks" else None)
            for t in self.order
        }
        if self.reencoders:
            self.reencoder = {
                t: DenseTiles(tuple(self.reencoder_widths), self.dtype) if t == "emotion"
                else ConvPyramid(tuple(self.reencoder_widths), self.dtype)
                for t in self.order
            }

    def _raw_channels(self, task: str) -> int:
        return {"landmarks": self.num_landmarks, "parsing": self.num_parsing_classes,
                "emotion": self.num_emotions}[task]

    def _zero_feedback(self, batch: int, size: int, levels: int, dtype: Dtype) -> dict[int, jax.Array]:
        """Zero maps shaped as `_feedback`'s: iteration 0 of eq. 4 (no task feedback)."""
        out = {}
        for k, f in enumerate(LEVEL_FACTORS[:levels]):
            if not self.reencoders:
                channels = sum(self._raw_channels(t) for t in self.order)
            else:
                channels = self.reencoder_widths[k] * (1 if self.integration == "sum" else len(self.order))
            out[size // f] = jnp.zeros((batch, size // f, size // f, channels), dtype)
        return out

    def _feedback(self, fed: Mapping[str, jax.Array], size: int, levels: int, train: bool) -> dict[int, jax.Array]:
        """Re-encodes every task's fed-back prediction and integrates them per resolution."""
        pyramids = []
        for t in self.order:
            x = fed[t]
            if t == "landmarks":
                x = landmark_heatmaps(x, size, self.heatmap_radius)
            if self.reencoders:
                pyramids.append(self.reencoder[t](x, size, levels, train) if t == "emotion"
                                else self.reencoder[t](x, levels, train))
            else:
                if t == "emotion":
                    x = jnp.broadcast_to(x[:, None, None, :], (x.shape[0], size, size, x.shape[-1]))
                pyramids.append(raw_pyramid(x, levels))
        out = {}
        for r in pyramids[0]:
            maps = [p[r] for p in pyramids]
            if self.reencoders and self.integration == "sum":
                out[r] = sum(maps[1:], maps[0])
            else:
                out[r] = jnp.concatenate([m.astype(maps[0].dtype) for m in maps], axis=-1)
        return out

    def _iterate(self, fed: Mapping[str, jax.Array] | None, image: jax.Array, bn_set: Any, size: int, levels: int,
                 train: bool) -> tuple[dict[str, jax.Array], dict[str, jax.Array]]:
        """One iteration of eq. 4: (fed-back predictions or None) -> (next fed-back form, outputs)."""
        dtype = self.dtype or image.dtype
        feedback = (self._zero_feedback(image.shape[0], size, levels, dtype) if fed is None
                    else self._feedback(fed, size, levels, train))
        _, inter = self.backbone(image, feedback=feedback, bn_set=bn_set, train=train)
        outputs, nxt = {}, {}
        for t in self.order:
            if t == "landmarks":
                u = self.decoder[t](inter[f"down_{size // 2 ** (self.num_blocks - 1)}"], train)
                u = u.reshape(u.shape[0], 2, self.num_landmarks).transpose(0, 2, 1)  # (x_1..x_L, y_1..y_L)
                outputs[t] = nxt[t] = (u + 0.5) * size
            elif t == "parsing":
                outputs[t] = self.decoder[t](inter["features"]).astype(jnp.float32)
                nxt[t] = jax.nn.softmax(outputs[t], axis=-1)
            else:
                outputs[t] = self.decoder[t](inter["bottleneck"], train)
                nxt[t] = jax.nn.softmax(outputs[t], axis=-1)
        return nxt, outputs

    def _initial(self, initial: Mapping[str, Any] | None, batch: int, size: int) -> dict[str, jax.Array]:
        shapes = {"landmarks": (self.num_landmarks, 2), "parsing": (size, size, self.num_parsing_classes),
                  "emotion": (self.num_emotions,)}
        missing = [t for t in self.order if initial is None or t not in initial]
        if missing:
            raise ValueError(f"initial_feedback='mean' needs initial predictions for {missing}")
        fed = {}
        for t in self.order:
            x = jnp.asarray(initial[t], jnp.float32)
            if x.shape != shapes[t]:
                raise ValueError(f"initial[{t!r}] must have shape {shapes[t]}, got {x.shape}")
            fed[t] = jnp.broadcast_to(x, (batch,) + x.shape)
        return fed

    def __call__(self, image: jax.Array, bn_set: Any = 0, *, initial: Mapping[str, Any] | None = None,
                 train: bool = False) -> tuple[dict[str, jax.Array], dict[str, jax.Array]]:
        """Runs iterations 0 ... ITER on NHWC images; see the module docstring for the outputs.

        Args:
            image: (B, S, S, C), S divisible by 2**num_blocks.
            bn_set: the backbone's BN set (int, may be traced): the batch's data set.
            initial: with `initial_feedback="mean"`, a dict with, per task, `landmarks` (L, 2)
                pixels, `parsing` (S, S, C) or `emotion` (C,) probabilities, broadcast over
                the batch; ignored with "zeros".
            train: dropout and batch statistics (needs `mutable=["batch_stats"]` and a
                `"dropout"` rng).
        """
        self.backbone  # runs setup, which validates the attributes
        step = 2**self.num_blocks
        if image.ndim != 4 or image.shape[1] != image.shape[2] or image.shape[1] % step:
            raise ValueError(f"iFAN with {self.num_blocks} blocks needs square (B, S, S, C) images with S "
                             f"divisible by {step}, got shape {image.shape}")
        size, levels = image.shape[1], num_levels(image.shape[1], self.num_blocks)
        fed = self._initial(initial, image.shape[0], size) if self.initial_feedback == "mean" else None
        fed, first = self._iterate(fed, image, bn_set, size, levels, train)
        if self.reencoders and self.is_initializing():
            self._feedback(fed, size, levels, train)  # create the re-encoders whatever ITER and loop are
        per_iteration = [first]
        if self.loop == "unroll" or self.num_iterations == 0:
            for _ in range(self.num_iterations):
                fed, outputs = self._iterate(fed, image, bn_set, size, levels, train)
                per_iteration.append(outputs)
        else:
            def body(module: IFAN, carry, x, index):
                return module._iterate(carry, x, index, size, levels, train)

            update = self.is_mutable_collection("batch_stats")
            scan = nn.scan(body, variable_broadcast="params" if update else ("params", "batch_stats"),
                           variable_carry="batch_stats" if update else (),
                           split_rngs={"params": False, "dropout": True}, in_axes=(nn.broadcast, nn.broadcast),
                           length=self.num_iterations)
            _, stacked = scan(self, fed, image, bn_set)
            per_iteration += [jax.tree.map(lambda a, i=i: a[i], stacked) for i in range(self.num_iterations)]
        outputs = {f"{t}/{i}": out[t] for i, out in enumerate(per_iteration) for t in self.order}
        outputs.update(per_iteration[-1])
        return outputs, {}


def ifan(**kwargs: Any) -> IFAN:
    """`IFAN` with the paper's configuration (128 px input, 5+5 dense blocks, ITER=2)."""
    return IFAN(**kwargs)
