"""Weakly-supervised multimodal MTL (paper 3) on MUStARD: sarcasm, alone or with weak labels.

    python train.py --config configs/fusion_mustard.py:eflf,lstm \\
        --config.data.manual_dir=/path/to/MUStARD/data

``data.manual_dir`` is MUStARD's ``data/`` folder (``sarcasm_data.json``,
``split_indices.p``, the authors' utterance features; `affectjax.data.readers.
read_mustard`, needs ``pip install -e ".[multimodal]"``). MUStARD has no validation split:
the runs are scored on the test fold (fold 0 of the authors' five; ``--config.data.
builder_kwargs.fold=K``), as the paper reports it. Features are the authors' (text GloVe
300-d, audio 283-d, visual ResNet pool5 2048-d); the paper extracted MulT-style 300/74/35-d
features it did not release.

``:eflf,lstm,weak`` adds weak emotion labels from an EF-LF-LSTM teacher trained on IEMOCAP
and weak binarised sentiment from one trained on CMU-MOSEI, at Table 9's EF-LF-LSTM weights
(emotion 0.1, sentiment 0.5, sarcasm 1.0). A teacher predicts on MUStARD only if both
data sets have the same feature widths: with the authors' MUStARD features (283-d audio,
2048-d visual) against the MulT pickles' (74, 35) the run stops with one line saying so;
features extracted the MulT way, read from a MulT-layout pickle, work. The teachers'
folders: ``--config.fusion.weak.emotion.data.manual_dir=DIR`` (``iemocap_data.pkl``) and
``--config.fusion.weak.sentiment.data.manual_dir=DIR`` (``mosei_senti_data.pkl``).
"""

import ml_collections

from configs import common
from configs import fusion_iemocap


def get_config(arg: str = "eflf,lstm") -> ml_collections.ConfigDict:
    fusion, encoder, flags = fusion_iemocap.parse(arg, ("weak",))
    c = common.fusion_config(epochs=30)
    lr, batch, dims = fusion_iemocap.model_settings(fusion_iemocap.TABLE7, fusion, encoder)
    c.model.update(fusion=fusion, encoder=encoder, **dims)
    c.phases.full.learning_rate, c.batch_size = lr, min(batch, 64)
    c.data.name = "mustard"
    c.data.manual_dir = ""  # MUStARD's data/ folder
    c.data.builder_kwargs = dict(scheme="folds", fold=0, text="glove", seq_len=50)
    c.data.eval_split = "test"
    c.fusion.update(tasks="sarcasm", main_task="sarcasm", num_emotions=4,
                    emotion_names=("Neutral", "Happy", "Sad", "Angry"))
    if "weak" in flags:
        c.fusion.tasks = "emotion+sentiment+sarcasm"
        c.fusion.weights = dict(emotion=0.1, sentiment=0.5, sarcasm=1.0)
        c.fusion.weak_weight = "one"  # Table 9's searched weights replace the confidence
        teacher = dict(file="", model=dict(fusion="eflf", encoder="lstm"), seed=0, epochs=30)
        c.fusion.weak = ml_collections.ConfigDict(dict(
            emotion=dict(teacher, data=dict(name="multimodal", manual_dir="", builder_kwargs=dict(
                file="iemocap_data.pkl", dataset="iemocap", seq_len=50),
                eval_split="validation"), learning_rate=5e-4, batch_size=128),
            sentiment=dict(teacher, data=dict(name="multimodal", manual_dir="", builder_kwargs=dict(
                file="mosei_senti_data.pkl", dataset="mosei", seq_len=50),
                eval_split="validation"), learning_rate=1e-4, batch_size=32)))
    return c
