"""TFDS builders (array_record, no TensorFlow) for every affectjax data set.

`DATASETS` maps a config's ``data.name`` to its builder class; each class has
``config_for(**builder_kwargs)`` returning the config that caches those arguments apart.
"""

from affectjax.data.builders import manual
from affectjax.data.builders import synthetic
from affectjax.data.builders.common import AffectConfig
from affectjax.data.builders.common import IMAGE_KEYS

DATASETS = {
    "synthfaces": synthetic.SynthFacesBuilder,
    "synthaffect": synthetic.SynthAffectBuilder,
    "affectnet": manual.AffectNetBuilder,
    "affwild2_mtl": manual.AffWild2MtlBuilder,
    "affwild2_expr": manual.AffWild2ExprBuilder,
    "rafdb": manual.RafdbBuilder,
    "celeba": manual.CelebaBuilder,
    "fer2013": manual.Fer2013Builder,
    "mtfl": manual.MtflBuilder,
    "helen": manual.HelenBuilder,
    "image_folder": manual.ImageFolderBuilder,
    "multimodal": manual.MultimodalBuilder,
    "mustard": manual.MustardBuilder,
}
MANUAL = frozenset(k for k, v in DATASETS.items() if issubclass(v, manual.ManualImageBuilder))

__all__ = ["AffectConfig", "DATASETS", "IMAGE_KEYS", "MANUAL"]
