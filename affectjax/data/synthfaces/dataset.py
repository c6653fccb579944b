"""`SynthFaces`: a deterministic random-access source of rendered, fully labelled faces."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from affectjax.data import label_noise as label_noise_lib
from affectjax.data.synthfaces import attributes as attributes_lib
from affectjax.data.synthfaces import params as params_lib
from affectjax.data.synthfaces import render as render_lib
from affectjax.data.synthfaces.domains import get_domain

_CHUNK_PIXELS = 32 * 64 * 64  # pixels rendered at a time (keeps work arrays in cache)


class SynthFaces:
    """Procedural face data set (see `affectjax.data.synthfaces` for the generative story).

    Example i is a pure function of (seed, domain, i): `ds[i]` equals `ds.batch([i])` stripped
    of its batch axis, and a fresh instance returns the same arrays.

    Args:
      num_examples: length of the data set.
      seed: non-negative integer seed.
      image_size: output height = width (8..512 pixels).
      domain: a key of `DOMAINS` ("studio", "wild", "grayscale_lowres").
      label_noise: None or dict(kind="symmetric"|"class_dependent", rate=0.2, seed=0); the
        noisy label goes to `expr` and the clean one to `expr_clean`.
      attributes: add `attr`, int32 (40,) in 0/1: the attribute view of
        `attributes.SYNTHFACES_ATTRIBUTES` (a stand-in for CelebA). Off by default, so
        examples keep their keys; it changes no other key.
    """

    def __init__(self, num_examples: int, *, seed: int = 0, image_size: int = 64,
                 domain: str = "studio", label_noise: dict[str, Any] | None = None,
                 attributes: bool = False):
        if int(num_examples) < 0:
            raise ValueError(f"num_examples must be non-negative, got {num_examples}")
        if int(seed) < 0:
            raise ValueError(f"seed must be non-negative, got {seed}")
        if not 8 <= int(image_size) <= 512:
            raise ValueError(f"image_size must lie in [8, 512], got {image_size}")
        self.num_examples, self.seed, self.image_size = int(num_examples), int(seed), int(
            image_size)
        self.domain = domain
        self.spec = get_domain(domain)
        self.label_noise = label_noise_lib.check_spec(label_noise)
        self.attributes = bool(attributes)
        rs = self.spec.render_scale
        self.render_size = None if rs >= 1 else max(8, round(self.image_size * rs))

    def __len__(self) -> int:
        return self.num_examples

    def _check(self, indices: Sequence[int]) -> np.ndarray:
        idx = np.asarray(indices, np.int64).reshape(-1)
        bad = (idx < 0) | (idx >= self.num_examples)
        if bad.any():
            raise IndexError(f"index {int(idx[bad][0])} out of range for SynthFaces of length "
                             f"{self.num_examples}")
        return idx

    def params(self, indices: Sequence[int]) -> dict[str, np.ndarray]:
        """The sampled render parameters of `indices` (edit them and call `render`)."""
        return params_lib.sample_params(self._check(indices), seed=self.seed,
                                        domain=self.domain)

    def render(self, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Renders `params` at this data set's image and render sizes."""
        return render_lib.render(params, image_size=self.image_size,
                                 render_size=self.render_size)

    def batch(self, indices: Sequence[int]) -> dict[str, np.ndarray]:
        """A batch dict (data contract) for `indices`, rendered vectorised in chunks."""
        idx = self._check(indices)
        if idx.size == 0:
            raise ValueError("indices must not be empty")
        parts = []
        size = self.render_size or self.image_size
        step = max(1, _CHUNK_PIXELS // (size * size))
        for start in range(0, idx.size, step):
            chunk = idx[start:start + step]
            p = self.params(chunk)
            out = self.render(p)
            b = len(chunk)
            out.update(
                expr=p["expr"], va=p["va"], va_mask=np.ones(b, bool),
                au=(p["au"] > 0).astype(np.int32), landmarks_mask=np.ones(b, bool))
            if self.label_noise is not None:
                out["expr_clean"] = p["expr"]
                out["expr"] = label_noise_lib.flip_labels(p["expr"], chunk, **self.label_noise)
            if self.attributes:
                out["attr"] = attributes_lib.attributes_from_params(p)
            parts.append(out)
        if len(parts) == 1:
            return parts[0]
        return {k: np.concatenate([q[k] for q in parts]) for k in parts[0]}

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        index = int(index)
        if index < 0:
            index += self.num_examples
        return {k: v[0] for k, v in self.batch([index]).items()}

    def __repr__(self) -> str:
        return (f"SynthFaces(num_examples={self.num_examples}, seed={self.seed}, "
                f"image_size={self.image_size}, domain={self.domain!r}, "
                f"label_noise={self.label_noise}"
                + (", attributes=True)" if self.attributes else ")"))
