"""Data: built-in procedural sets, readers for the papers' real sets, TFDS builders, pipeline.

Submodules (import what you need; nothing heavy is imported here):

* `affectjax.data.synthfaces`   SynthFaces, rendered faces with exact labels.
* `affectjax.data.synthaffect`  SynthAffect, aligned text/audio/visual sequences.
* `affectjax.data.readers`      readers for AffectNet, Aff-Wild2, RAF-DB, FER2013, MTFL,
  Helen, MulT pickles and class-per-folder images.
* `affectjax.data.builders`     TFDS builders (array_record, no TensorFlow), `DATASETS`.
* `affectjax.data.preprocess`   resize, label-consistent augmentation, normalisation.
* `affectjax.data.pipeline`     `default_config`, `create_source`, `Loader`, `class_counts`.

Command line: ``python -m affectjax.data {prepare,inspect,preview,bench} --help``.
"""
