"""Readers for the papers' real data sets, in the layouts their owners distribute.

Each ``read_*`` function returns a generator of examples (dicts of numpy arrays without a
batch dimension, in the data contract of `affectjax.data`), in the order the data set's
own list gives, with the data set's labels mapped into ABAW's expression order (the table
is in each reader's docstring).  Bad input raises `DataFormatError`; skipping is opt-in
with ``on_error="skip"`` and is counted in the absl log.

Each reader has a cheap ``count_*`` twin that counts listed items without decoding images.
``python -m affectjax.data.readers --reader=NAME --path=PATH --split=SPLIT`` checks a
layout and prints a label summary.
"""

from collections.abc import Callable

from affectjax import registry
from affectjax.data.readers._common import ABAW_EXPRESSIONS
from affectjax.data.readers._common import AU_NAMES
from affectjax.data.readers._common import DataFormatError
from affectjax.data.readers._common import HELEN_CLASSES
from affectjax.data.readers._common import landmarks5_from_68
from affectjax.data.readers.affectnet import AFFECTNET_TO_ABAW
from affectjax.data.readers.affectnet import count_affectnet
from affectjax.data.readers.affectnet import read_affectnet
from affectjax.data.readers.affwild2 import count_affwild2_mtl
from affectjax.data.readers.affwild2 import read_affwild2_mtl
from affectjax.data.readers.affwild2_expr import AffWild2ExprExamples
from affectjax.data.readers.affwild2_expr import count_affwild2_expr
from affectjax.data.readers.affwild2_expr import read_affwild2_expr
from affectjax.data.readers.celeba import CELEBA_ATTRIBUTES
from affectjax.data.readers.celeba import count_celeba
from affectjax.data.readers.celeba import read_celeba
from affectjax.data.readers.fer2013 import FER2013_TO_ABAW
from affectjax.data.readers.fer2013 import count_fer2013
from affectjax.data.readers.fer2013 import read_fer2013
from affectjax.data.readers.folder import count_image_folder
from affectjax.data.readers.folder import read_image_folder
from affectjax.data.readers.helen import count_helen
from affectjax.data.readers.helen import read_helen
from affectjax.data.readers.mtfl import count_mtfl
from affectjax.data.readers.mtfl import read_mtfl
from affectjax.data.readers.multimodal import MOSEI_EMOTIONS
from affectjax.data.readers.multimodal import count_multimodal_pickle
from affectjax.data.readers.multimodal import read_multimodal_pickle
from affectjax.data.readers.mustard import count_mustard
from affectjax.data.readers.mustard import read_mustard
from affectjax.data.readers.rafdb import RAFDB_TO_ABAW
from affectjax.data.readers.rafdb import count_rafdb
from affectjax.data.readers.rafdb import read_rafdb

READERS: dict[str, Callable] = {
    "affectnet": read_affectnet,
    "affwild2_mtl": read_affwild2_mtl,
    "affwild2_expr": read_affwild2_expr,
    "rafdb": read_rafdb,
    "celeba": read_celeba,
    "fer2013": read_fer2013,
    "mtfl": read_mtfl,
    "helen": read_helen,
    "multimodal_pickle": read_multimodal_pickle,
    "mustard": read_mustard,
    "image_folder": read_image_folder,
}

COUNTERS: dict[str, Callable[..., int]] = {
    "affectnet": count_affectnet,
    "affwild2_mtl": count_affwild2_mtl,
    "affwild2_expr": count_affwild2_expr,
    "rafdb": count_rafdb,
    "celeba": count_celeba,
    "fer2013": count_fer2013,
    "mtfl": count_mtfl,
    "helen": count_helen,
    "multimodal_pickle": count_multimodal_pickle,
    "mustard": count_mustard,
    "image_folder": count_image_folder,
}


def get_reader(name: str) -> Callable:
    """The reader registered under ``name``; an unknown name lists the choices."""
    return registry.lookup(READERS, name, "reader")


__all__ = [
    "ABAW_EXPRESSIONS", "AFFECTNET_TO_ABAW", "AU_NAMES", "AffWild2ExprExamples",
    "CELEBA_ATTRIBUTES", "COUNTERS", "DataFormatError", "FER2013_TO_ABAW", "HELEN_CLASSES",
    "MOSEI_EMOTIONS", "RAFDB_TO_ABAW", "READERS", "count_affectnet", "count_affwild2_expr",
    "count_affwild2_mtl", "count_celeba", "count_fer2013", "count_helen",
    "count_image_folder", "count_mtfl", "count_multimodal_pickle", "count_mustard",
    "count_rafdb", "get_reader", "landmarks5_from_68", "read_affectnet",
    "read_affwild2_expr", "read_affwild2_mtl", "read_celeba", "read_fer2013", "read_helen",
    "read_image_folder", "read_mtfl", "read_multimodal_pickle", "read_mustard", "read_rafdb",
]
