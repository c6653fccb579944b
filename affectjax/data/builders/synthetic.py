"""TFDS builders for the procedural data sets: `synthfaces` and `synthaffect`.

Both generate their examples with the random-access generators of `affectjax.data`, so
a prepared split equals ``[Generator(split, ...)[i] for i in range(n)]`` key for key
(images round-trip losslessly through PNG). Each distinct set of generation arguments is
cached under its own config name in the TFDS ``data_dir`` (see `common.make_config`).

Example::

    builder = SynthFacesBuilder(data_dir="~/tensorflow_datasets",
                                config=SynthFacesBuilder.config_for(domain="wild"))
    builder.download_and_prepare(file_format="array_record")
    source = builder.as_data_source("train")
"""

from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from affectjax import registry
from affectjax.data.builders import common
from affectjax.data import synthfaces

SPLITS = ("train", "validation", "test")


class SynthFacesBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """SynthFaces rendered faces with exact expression, VA, AU, landmark and parsing labels.

    Config kwargs: ``sizes`` (dict split -> number of examples) and the keyword arguments
    of `affectjax.data.synthfaces.SynthFaces` (``domain``, ``image_size``, ``seed``,
    ``label_noise``, ``attributes``). ``attributes=True`` stores the 40-attribute view as
    ``attr``; ``attributes=False`` names the same config as leaving it out, so data prepared
    before the option existed is found again. SynthFaces example ``i`` depends on (seed,
    domain, i) only, so the splits are consecutive index ranges of one SynthFaces of length
    ``sum(sizes)``: train ``[0, n_train)``, then validation, then test — disjoint and each
    reproducible.
    """

    name = "synthfaces"
    code_path = None  # no checksums file (TFDS would need importlib_resources)
    VERSION = common.VERSION
    DEFAULT_SIZES = {"train": 8000, "validation": 1000, "test": 1000}

    @classmethod
    def config_for(cls, **kwargs: Any) -> common.AffectConfig:
        """A config for these generation arguments (``sizes`` defaults to DEFAULT_SIZES)."""
        kwargs.setdefault("sizes", dict(cls.DEFAULT_SIZES))
        kwargs["sizes"] = {k: int(v) for k, v in dict(kwargs["sizes"]).items()}
        if not kwargs.get("attributes", False):
            kwargs.pop("attributes", None)  # the default: the config of older data
        for split in kwargs["sizes"]:
            if split not in SPLITS:
                raise registry.unknown_name_error("builder_kwargs.sizes split", split, SPLITS)
        prefix = f"{kwargs.get('domain', 'studio')}-{kwargs.get('image_size', 64)}px"
        return common.make_config(prefix, kwargs, salt=synthfaces.RENDERER_VERSION)

    @classmethod
    def split_ranges(cls, sizes: dict[str, int]) -> dict[str, range]:
        """The SynthFaces index range of each split."""
        out, start = {}, 0
        for split in SPLITS:
            n = int(sizes.get(split, 0))
            out[split] = range(start, start + n)
            start += n
        return out

    def generator(self):
        """The `SynthFaces` instance behind every split."""
        from affectjax.data.synthfaces import SynthFaces  # pylint: disable=g-import-not-at-top

        kwargs = dict(self.builder_config.kwargs)
        sizes = kwargs.pop("sizes")
        return SynthFaces(max(1, sum(sizes.values())), **kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        example = self.generator()[0]
        h, w = np.asarray(example["image"]).shape[:2]
        return tfds.core.DatasetInfo(
            builder=self, disable_shuffling=True,
            description="SynthFaces procedural faces (affectjax).",
            features=common.image_features(h, w, common.extra_features(example),
                                           attributes="attr" in example))

    def _split_generators(self, dl_manager):
        del dl_manager
        ranges = self.split_ranges(self.builder_config.kwargs["sizes"])
        return {split: self._generate_examples(split, r) for split, r in ranges.items() if r}

    def _generate_examples(self, split: str, indices: range):
        # One example at a time: exactly `SynthFaces[i]` (and faster than `batch` on CPU).
        source = self.generator()
        h, w = self.info.features["image"].shape[:2]
        feats = self.info.features.keys()
        keep = tuple(k for k in feats if k not in common.CONTRACT_KEYS)
        for j, i in enumerate(indices):
            yield j, common.fill_image_example(source[i], (h, w),
                                               where=f"synthfaces {split} item {j}", keep=keep,
                                               attributes="attr" in feats)


class SynthAffectBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """SynthAffect aligned text/audio/visual sequences (variants iemocap, mosei, mustard).

    Config kwargs: ``variant`` and the keyword arguments of
    `affectjax.data.synthaffect.SynthAffect` (seed, seq_len, observe_all) plus ``sizes``
    (dict split -> number of examples; defaults to the variant's sizes).
    """

    name = "synthaffect"
    code_path = None  # no checksums file (TFDS would need importlib_resources)
    VERSION = common.VERSION

    @classmethod
    def config_for(cls, **kwargs: Any) -> common.AffectConfig:
        """A config for these generation arguments (``variant`` defaults to "mosei")."""
        kwargs.setdefault("variant", "mosei")
        return common.make_config(kwargs["variant"], kwargs)

    def _source(self, split: str):
        from affectjax.data.synthaffect import SynthAffect  # pylint: disable=g-import-not-at-top

        kwargs = dict(self.builder_config.kwargs)
        sizes = kwargs.pop("sizes", None) or {}
        variant = kwargs.pop("variant")
        return SynthAffect(variant, split, num_examples=sizes.get(split), **kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        example = self._source("train")[0]
        feats = {k: tfds.features.Tensor(shape=v.shape, dtype=v.dtype) if v.ndim
                 else tfds.features.Scalar(dtype=v.dtype) for k, v in example.items()}
        return tfds.core.DatasetInfo(disable_shuffling=True,
            builder=self, description="SynthAffect multimodal sequences (affectjax).",
            features=tfds.features.FeaturesDict(feats))

    def _split_generators(self, dl_manager):
        del dl_manager
        return {split: self._generate_examples(split) for split in SPLITS
                if len(self._source(split))}

    def _generate_examples(self, split: str):
        source = self._source(split)
        for i in range(len(source)):
            yield i, source[i]
