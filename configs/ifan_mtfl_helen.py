"""iFAN on the paper's data sets (Li et al., ACM MM 2017, Sec. 4.1): MTFL + Helen (+ emotion).

    python train.py --config configs/ifan_mtfl_helen.py --workdir runs/ifan_2t \\
        --config.ifan.sources.landmarks.manual_dir=/path/to/MTFL \\
        --config.ifan.sources.parsing.manual_dir=/path/to/helen
    python train.py --config configs/ifan_mtfl_helen.py:3t --workdir runs/ifan_3t \\
        --config.ifan.sources.landmarks.manual_dir=/path/to/MTFL \\
        --config.ifan.sources.parsing.manual_dir=/path/to/helen \\
        --config.ifan.sources.emotion.manual_dir=/path/to/RAF-DB

Landmarks from MTFL (``training.txt``/``testing.txt`` and the image folders they name; 5
points, evaluated on the test list), parsing from Helen (``images/``, ``labels/``, the
exemplars/tuning/testing lists; 11 classes, evaluated on the 100 test faces), and with
``:3t`` emotion from RAF-DB's basic expressions (``EmoLabel/list_patition_label.txt`` and
the aligned faces, mapped into ABAW order; the paper used BNU-LSVED, which is not
distributed in a layout this project reads). Every face is resized to 128 x 128 with its
landmarks and mask. The paper's settings otherwise: FC-DenseNet with 5 + 5 dense blocks of
3 layers, growth 12, 7x7 stem of 48, ITER = 2, one BatchNorm set per data set, RMSprop,
batch 64 / 24 / 96 for landmarks / parsing / emotion, 30 epochs of task-wise pre-training
at 1e-3 per data set, then 200 epochs of batch-wise fine-tuning from 1e-3 to 1e-6.

Result: not measured by this project (the data sets are licensed and not available
here). The paper reports (Tables 1-3, 2T / 3T at ITER 2): mean NME 6.19 / 5.84 %, Helen
overall F-score 91.10 / 91.15 %, emotion accuracy 45.40 % (BNU-LSVED, 3T).
"""

import ml_collections

from configs import ifan_synthfaces


def _manual(name: str, eval_split: str, batch_size: int) -> dict:
    return dict(name=name, manual_dir="", data_dir="~/tensorflow_datasets",
                batch_size=batch_size, eval_split=eval_split,
                image_size=128, augment=dict(enabled=False),
                builder_kwargs=dict(image_size=128))


def get_config(arg: str = "2t") -> ml_collections.ConfigDict:
    if arg not in ("2t", "3t"):
        raise ValueError(f"config argument {arg!r}; choose 2t or 3t")
    c = ifan_synthfaces.get_config("full,3t" if arg == "3t" else "full")
    c.ifan.sources = ml_collections.ConfigDict(dict(
        landmarks=_manual("mtfl", "test", 64),
        parsing=_manual("helen", "test", 24),
        emotion=_manual("rafdb", "test", 96)))
    c.model.num_emotions = 8  # ABAW order; RAF-DB fills 7 of them (no "Other").
    return c
