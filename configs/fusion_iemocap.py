"""Weakly-supervised multimodal MTL (paper 3) on IEMOCAP: Table 3's emotion recognition.

    python train.py --config configs/fusion_iemocap.py:eflf,lstm \\
        --config.data.manual_dir=/path/to/folder/with/iemocap_data.pkl

Reads the MulT pickle ``iemocap_data.pkl`` (word-aligned GloVe text 300-d, COVAREP audio
74-d, Facet visual 35-d, 50 steps; `affectjax.data.readers.read_multimodal_pickle`) and
trains four-emotion multi-label recognition (Neutral, Happy, Sad, Angry) with BCE and
pos_weight = neg/pos. The arguments pick the fusion (``ef``, ``lf``, ``eflf``) and the
encoder (``avg``, ``lstm``, ``transformer``); learning rate, batch size and the model's
dimensions are the paper's best for that model on IEMOCAP (Table 7; EF-LF takes the
dimensions of its EF and LF models). The paper reports the mean ± std over seeds 0-4:

    python -m affectjax.sweep --config configs/fusion_iemocap.py:eflf,lstm --seeds 0,1,2,3,4 \\
        --set data.manual_dir=/path/to/data --workdir runs/sweeps/iemocap_eflf_lstm

``:eflf,lstm,weak`` adds weak sentiment labels from an EF-LF-LSTM teacher trained on
CMU-MOSEI (``data.manual_dir`` must then also hold ``mosei_senti_data.pkl``) at the loss
weights of the paper's Table 9 (emotion 1.0, sentiment 0.8).
"""

import ml_collections

from configs import common

# Table 7 (IEMOCAP): (learning rate, batch size, model dimensions).
TABLE7 = {
    ("ef", "avg"): (1e-3, 64, dict(hidden_dim=128)),
    ("lf", "avg"): (1e-3, 32, dict(lf_hidden_dims=(128, 32, 16))),
    ("ef", "lstm"): (5e-4, 128, dict(hidden_dim=300)),
    ("lf", "lstm"): (1e-3, 128, dict(lf_hidden_dims=(300, 128, 128))),
    ("ef", "transformer"): (5e-5, 64, dict(num_layers=2, num_heads=5, ff_dim=512)),
    ("lf", "transformer"): (1e-4, 128, dict(num_layers=2, lf_num_heads=(4, 2, 2),
                                            lf_ff_dims=(300, 128, 64))),
    ("eflf", "avg"): (5e-4, 64, {}),
    ("eflf", "lstm"): (5e-4, 128, {}),
    ("eflf", "transformer"): (1e-4, 256, {}),
}
FUSIONS, ENCODERS = ("ef", "lf", "eflf"), ("avg", "lstm", "transformer")


def parse(arg: str, extra: tuple[str, ...] = ()) -> tuple[str, str, set[str]]:
    """``"eflf,lstm[,flag...]"`` -> (fusion, encoder, flags); unknown tokens list choices."""
    fusion, encoder, flags = "eflf", "lstm", set()
    for token in filter(None, (t.strip() for t in arg.split(","))):
        if token in FUSIONS:
            fusion = token
        elif token in ENCODERS:
            encoder = token
        elif token in extra:
            flags.add(token)
        else:
            raise ValueError(f"config argument {token!r}; choose from "
                             f"{list(FUSIONS + ENCODERS + extra)}")
    return fusion, encoder, flags


def model_settings(table: dict, fusion: str, encoder: str) -> tuple[float, int, dict]:
    """Learning rate, batch size and dimensions of one model (EF-LF: its EF and LF dims)."""
    lr, batch, dims = table[(fusion, encoder)]
    if fusion == "eflf":
        dims = {**table[("ef", encoder)][2], **table[("lf", encoder)][2]}
    if encoder == "transformer" and "hidden_dim" not in dims:
        dims["hidden_dim"] = 300  # a width divisible by the heads (the inputs are projected)
    return lr, batch, dims


def get_config(arg: str = "eflf,lstm") -> ml_collections.ConfigDict:
    fusion, encoder, flags = parse(arg, ("weak",))
    c = common.fusion_config(epochs=30)
    lr, batch, dims = model_settings(TABLE7, fusion, encoder)
    c.model.update(fusion=fusion, encoder=encoder, **dims)
    c.phases.full.learning_rate, c.batch_size = lr, batch
    c.data.name = "multimodal"
    c.data.manual_dir = ""  # the folder holding iemocap_data.pkl
    c.data.builder_kwargs = dict(file="iemocap_data.pkl", dataset="iemocap", seq_len=50)
    c.data.eval_split = "validation"
    c.fusion.update(tasks="emotion", main_task="emotion", num_emotions=4,
                    emotion_names=("Neutral", "Happy", "Sad", "Angry"))
    if "weak" in flags:
        c.fusion.tasks = "emotion+sentiment"
        c.fusion.weights = dict(emotion=1.0, sentiment=0.8, sarcasm=0.0)
        c.fusion.weak_weight = "one"  # Table 9's searched weights replace the confidence
        c.fusion.weak = ml_collections.ConfigDict(dict(sentiment=dict(
            file="", data=dict(builder_kwargs=dict(file="mosei_senti_data.pkl",
                                                   dataset="mosei", seq_len=50)),
            model=dict(fusion="eflf", encoder="lstm"), seed=0, epochs=30,
            learning_rate=1e-4, batch_size=32)))
    return c
