"""TFDS ``manual_dir`` builders for the papers' real data sets, via `affectjax.data.readers`.

The data sets are licensed and never downloaded: the user puts them, in the layout their
owners distribute, under a folder passed as ``manual_dir`` (``data.manual_dir`` in a
config, ``--manual-dir`` on the command line). Each builder reads every split once with
its reader, stores images at the fixed size of its config (``image_size``, default 112)
and fills the keys its data set lacks with the contract's "missing" values (see
`affectjax.data.builders.common`), so every image batch has the same structure.

| builder        | reader                    | splits                  |
|----------------|---------------------------|-------------------------|
| `affectnet`    | `read_affectnet`          | train, validation       |
| `affwild2_mtl` | `read_affwild2_mtl`       | train, validation       |
| `affwild2_expr`| `read_affwild2_expr`      | train, validation       |
| `rafdb`        | `read_rafdb`              | train, test             |
| `celeba`       | `read_celeba`             | train, validation, test |
| `fer2013`      | `read_fer2013`            | train, validation, test |
| `mtfl`         | `read_mtfl`               | train, test             |
| `helen`        | `read_helen`              | train, validation, test |
| `image_folder` | `read_image_folder`       | train                   |
| `multimodal`   | `read_multimodal_pickle`  | train, validation, test |
| `mustard`      | `read_mustard`            | train, test             |

The layout each expects under manual_dir is `LAYOUTS[name]` (and the reader's docstring).
`celeba` also stores the contract's ``attr`` (its 40 attributes); the others leave it to
be filled (all -1) when read.

A reader option that changes which examples exist has its default written into the builder
config (`ManualImageBuilder.READER_DEFAULTS`, e.g. AffectNet's ``drop_non_class=True``), so
data prepared under another setting is never read back as this one. When a reader's
iterator has a ``note`` (AffectNet: how many rows with codes 8–10 were dropped), the
builder stores it per split in ``info.metadata["notes"]``; `affectjax.data.pipeline`
prints it with the split's size.
"""

import os
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from affectjax.data.builders import common

LAYOUTS = {
    "affectnet": "Manually_Annotated_file_lists/{training,validation}.csv + "
                 "Manually_Annotated_Images/, or {train_set,val_set}/{images,annotations}/",
    "affwild2_mtl": "{training,validation}_set_annotations.txt + "
                    "cropped_aligned/<video>/<frame>.jpg",
    "affwild2_expr": "annotations/EXPR_Set/{Train_Set,Validation_Set}/<video>.txt + "
                     "cropped_aligned/<video>/<frame:05d>.jpg",
    "rafdb": "EmoLabel/list_patition_label.txt + Image/aligned/<name>_aligned.jpg",
    "celeba": "img_align_celeba/<000001.jpg ...> + list_attr_celeba.txt (count line, the 40 "
              "attribute names, then 'FILE -1 1 ...' per image) + list_eval_partition.txt "
              "('FILE 0|1|2': train, validation, test)",
    "fer2013": "fer2013.csv (columns emotion,pixels,Usage)",
    "mtfl": "training.txt, testing.txt + the image folders they name (lfw_5590/, net_7876/)",
    "helen": "images/NAME.jpg, labels/NAME/NAME_lbl00.png..lbl10.png, "
             "exemplars.txt, tuning.txt, testing.txt",
    "image_folder": "<class_name>/<image files> (one folder per class)",
    "multimodal": "a MulT feature pickle, e.g. iemocap_data.pkl or mosei_senti_data.pkl "
                  "(+ CMU_MOSEI_Labels.csd for MOSEI emotions, builder_kwargs.emotion_file)",
    "mustard": "MUStARD's data/ folder: sarcasm_data.json, split_indices.p, "
               "audio_features.p, features/utterances_final/resnet_pool5.hdf5 and "
               "glove_full_dict.p (text='glove') or bert-output.jsonl (text='bert'); "
               "splits by scheme: folds (split_indices.p fold k), speaker_independent "
               "(test = FRIENDS) or balanced (the weak-MTL paper's 276+276 / 69+69)",
}
_SPLITS = {
    "affectnet": ("train", "validation"), "affwild2_mtl": ("train", "validation"),
    "affwild2_expr": ("train", "validation"),
    "rafdb": ("train", "test"), "celeba": ("train", "validation", "test"),
    "fer2013": ("train", "validation", "test"),
    "mtfl": ("train", "test"), "helen": ("train", "validation", "test"),
    "image_folder": ("train",), "multimodal": ("train", "validation", "test"),
    "mustard": ("train", "test"),
}
_MULTIMODAL_EMOTIONS = {"iemocap": 4, "mosei": 6, "mosi": 6}


class ManualImageBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base of the real image-set builders; subclasses set ``name`` (a `READERS` key).

    Config kwargs: ``image_size`` (stored square size, default 112) and any keyword
    argument of the reader (e.g. ``crop_to_face`` or ``drop_non_class`` for AffectNet,
    ``aligned`` for RAF-DB). ``ATTRIBUTES = True`` stores the contract's ``attr`` (CelebA).
    """

    VERSION = common.VERSION
    READER = ""
    READER_DEFAULTS: dict[str, Any] = {}  # reader options always named in the config
    ATTRIBUTES = False  # whether examples carry ``attr`` (stored); else filled when read
    code_path = None  # no checksums file (TFDS would need importlib_resources)

    @classmethod
    def config_for(cls, **kwargs: Any) -> common.AffectConfig:
        kwargs.setdefault("image_size", 112)
        for key, value in cls.READER_DEFAULTS.items():
            kwargs.setdefault(key, value)
        return common.make_config(f"{kwargs['image_size']}px", kwargs)

    @classmethod
    def layout(cls) -> str:
        return LAYOUTS[cls.name]

    @property
    def MANUAL_DOWNLOAD_INSTRUCTIONS(self) -> str:  # pylint: disable=invalid-name
        return f"Place the {self.name} files under manual_dir as: {self.layout()}"

    def _info(self) -> tfds.core.DatasetInfo:
        size = int(self.builder_config.kwargs["image_size"])
        return tfds.core.DatasetInfo(
            builder=self, disable_shuffling=True, description=f"{self.name} (affectjax)",
            features=common.image_features(size, size, attributes=self.ATTRIBUTES),
            metadata=tfds.core.MetadataDict())

    def _split_generators(self, dl_manager):
        root = os.fspath(dl_manager.manual_dir)
        return {split: self._generate_examples(root, split) for split in _SPLITS[self.name]}

    def _read(self, root: str, split: str):
        from affectjax.data import readers  # pylint: disable=import-outside-toplevel

        reader = readers.READERS[self.READER or self.name]
        kwargs = dict(self.builder_config.kwargs)
        if self.name == "fer2013":
            return reader(os.path.join(root, "fer2013.csv"), split, **kwargs)
        if self.name == "image_folder":
            return reader(root, **kwargs)
        return reader(root, split, **kwargs)

    def _generate_examples(self, root: str, split: str):
        size = int(self.builder_config.kwargs["image_size"])
        examples = self._read(root, split)
        for i, example in enumerate(examples):
            yield i, common.fill_image_example(example, (size, size),
                                               where=f"{self.name} {split} item {i}",
                                               attributes=self.ATTRIBUTES)
        if getattr(examples, "note", ""):
            self.info.metadata.setdefault("notes", {})[split] = examples.note


def _image_builder(name: str, **attrs: Any) -> type:
    return type(f"{name.title().replace('_', '')}Builder", (ManualImageBuilder,),
                {"name": name, "__doc__": f"`{name}` from manual_dir ({LAYOUTS[name]}).",
                 **attrs}, skip_registration=True)


AffectNetBuilder = _image_builder("affectnet", READER_DEFAULTS={"drop_non_class": True})
AffWild2MtlBuilder = _image_builder("affwild2_mtl")
AffWild2ExprBuilder = _image_builder("affwild2_expr", READER_DEFAULTS={"drop_unlabelled": True})
RafdbBuilder = _image_builder("rafdb")
CelebaBuilder = _image_builder("celeba", ATTRIBUTES=True)
Fer2013Builder = _image_builder("fer2013")
MtflBuilder = _image_builder("mtfl")
HelenBuilder = _image_builder("helen")
ImageFolderBuilder = _image_builder("image_folder")


class MultimodalBuilder(ManualImageBuilder, skip_registration=True):
    """Word-aligned multimodal features from a MulT pickle in manual_dir.

    Config kwargs: ``file`` (default "mosei_senti_data.pkl"), ``dataset`` ("iemocap",
    "mosei" or "mosi"; default from the file name), ``seq_len`` (default 50), the reader's
    ``binarize``, and for CMU-MOSEI ``emotion_file`` (the SDK's ``CMU_MOSEI_Labels.csd``
    under manual_dir; adds the six emotions, matched by segment) with ``emotion_threshold``
    and ``match_tolerance``. Labels the data lack are filled as missing: ``emotion`` -1
    (E = 4 for IEMOCAP, 6 otherwise), ``sentiment`` 0 with ``sentiment_binary`` -1,
    ``sarcasm`` -1.
    """

    name = "multimodal"
    READER = "multimodal_pickle"

    @classmethod
    def config_for(cls, **kwargs: Any) -> common.AffectConfig:
        kwargs.setdefault("file", "mosei_senti_data.pkl")
        kwargs.setdefault("dataset", "iemocap" if "iemocap" in kwargs["file"] else "mosei")
        kwargs.setdefault("seq_len", 50)
        return common.make_config(kwargs["dataset"], kwargs)

    def _dims(self) -> dict[str, int]:
        return {"text": 300, "audio": 74, "visual": 35}

    def _num_emotions(self) -> int:
        return _MULTIMODAL_EMOTIONS[self.builder_config.kwargs["dataset"]]

    def _info(self) -> tfds.core.DatasetInfo:
        s = int(self.builder_config.kwargs["seq_len"])
        feats = {m: tfds.features.Tensor(shape=(s, d), dtype=np.float32)
                 for m, d in self._dims().items()}
        feats["emotion"] = tfds.features.Tensor(shape=(self._num_emotions(),), dtype=np.int32)
        feats["sentiment"] = tfds.features.Scalar(dtype=np.float32)
        feats["sentiment_binary"] = tfds.features.Scalar(dtype=np.int32)
        feats["sarcasm"] = tfds.features.Scalar(dtype=np.int32)
        return tfds.core.DatasetInfo(
            builder=self, disable_shuffling=True, description=f"{self.name} features (affectjax)",
            features=tfds.features.FeaturesDict(feats))

    def _read(self, root: str, split: str):
        from affectjax.data import readers  # pylint: disable=import-outside-toplevel

        kw = dict(self.builder_config.kwargs)
        path = os.path.join(root, kw.pop("file"))
        kw.pop("seq_len")
        if kw.get("emotion_file"):
            kw["emotion_labels"] = os.path.join(root, kw["emotion_file"])
        kw.pop("emotion_file", None)
        return readers.READERS[self.READER](path, split, **kw)

    def _generate_examples(self, root: str, split: str):
        from affectjax.data import readers  # pylint: disable=import-outside-toplevel

        e, dims = self._num_emotions(), self._dims()
        s = int(self.builder_config.kwargs["seq_len"])
        for i, ex in enumerate(self._read(root, split)):
            for m, d in dims.items():
                if ex[m].shape != (s, d):
                    raise readers.DataFormatError(
                        f"{self.name} {split} item {i} ({ex.get('id', 'no id')}): field {m!r} "
                        f"has shape {ex[m].shape}; the builder declares {(s, d)} ({self.layout()})")
            yield i, {
                "text": ex["text"], "audio": ex["audio"], "visual": ex["visual"],
                "emotion": np.asarray(ex.get("emotion", np.full(e, -1)), np.int32),
                "sentiment": np.float32(ex.get("sentiment", 0.0)),
                "sentiment_binary": np.int32(ex.get("sentiment_binary", -1)),
                "sarcasm": np.int32(ex.get("sarcasm", -1)),
            }


class MustardBuilder(MultimodalBuilder, skip_registration=True):
    """MUStARD utterances from its repository's ``data/`` folder in manual_dir.

    Config kwargs (the reader's, `affectjax.data.readers.read_mustard`): ``scheme``
    ("folds", "speaker_independent" or "balanced"; default "folds"), ``fold`` (0), ``seed``
    (0), ``text`` ("glove", "bert" or "bert_cls"), ``seq_len`` (50), ``visual_file``; and
    ``visual_dim``, the visual width when ``visual_file`` is none of the authors' files.
    Widths: text 300 (glove) or 768 (bert), audio 283, visual 2048 (ResNet pool5).
    """

    name = "mustard"
    READER = "mustard"

    @classmethod
    def config_for(cls, **kwargs: Any) -> common.AffectConfig:
        from affectjax.data.readers import mustard  # pylint: disable=import-outside-toplevel

        kwargs.setdefault("scheme", "folds")
        kwargs.setdefault("fold", 0)
        kwargs.setdefault("seed", 0)
        kwargs.setdefault("text", "glove")
        kwargs.setdefault("seq_len", 50)
        kwargs.setdefault("visual_file", mustard.FILES["visual"])
        return common.make_config(f"{kwargs['scheme']}-{kwargs['text']}", kwargs)

    def _dims(self) -> dict[str, int]:
        # pylint: disable-next=import-outside-toplevel
        from affectjax.data.readers import DataFormatError, mustard

        kw = self.builder_config.kwargs
        stem = os.path.splitext(os.path.basename(kw["visual_file"]))[0]
        visual = kw.get("visual_dim") or mustard.VISUAL_DIMS.get(stem)
        if not visual:
            raise DataFormatError(
                f"mustard: the width of visual_file {kw['visual_file']!r} is unknown (known: "
                f"{', '.join(mustard.VISUAL_DIMS)}); set builder_kwargs.visual_dim")
        return {"text": mustard.TEXT_DIMS[kw["text"]], "audio": mustard.AUDIO_DIM,
                "visual": int(visual)}

    def _num_emotions(self) -> int:
        return 6

    def _read(self, root: str, split: str):
        from affectjax.data import readers  # pylint: disable=import-outside-toplevel

        kw = dict(self.builder_config.kwargs)
        kw.pop("visual_dim", None)
        return readers.READERS[self.READER](root, split, **kw)
