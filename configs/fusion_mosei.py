"""Weakly-supervised multimodal MTL (paper 3) on CMU-MOSEI: emotions and sentiment together.

    python train.py --config configs/fusion_mosei.py:eflf,lstm \\
        --config.data.manual_dir=/path/to/folder

``data.manual_dir`` holds the MulT pickle ``mosei_senti_data.pkl`` (sentiment in [-3, 3],
word-aligned 300/74/35-d features) and the CMU-MultimodalSDK label file
``CMU_MOSEI_Labels.csd`` (the six emotion intensities, aligned to the pickle's segments by
id and binarised at > 0; `affectjax.data.readers.read_multimodal_pickle`, needs
``pip install -e ".[multimodal]"``). Multi-label emotions (Happy, Sad, Anger, Surprise,
Disgust, Fear) with strong sentiment labels beside them, the paper's "Emotion (CMU-MOSEI) +
Sentiment (S)" row, at Table 9's loss weights for EF-LF-LSTM (1.0, 1.0); learning rate,
batch size and dimensions from Table 8. Arguments: the fusion and encoder (as
configs/fusion_iemocap.py), ``emotion`` (emotions alone), ``sentiment`` (sentiment as the
main task) and ``regression`` (sentiment as L1 regression on the 7-point scale).
"""

import ml_collections

from configs import common
from configs import fusion_iemocap

# Table 8 (CMU-MOSEI): (learning rate, batch size, model dimensions).
TABLE8 = {
    ("ef", "avg"): (5e-4, 256, dict(hidden_dim=128)),
    ("lf", "avg"): (5e-4, 256, dict(lf_hidden_dims=(128, 64, 32))),
    ("ef", "lstm"): (5e-5, 32, dict(hidden_dim=512)),
    ("lf", "lstm"): (5e-5, 32, dict(lf_hidden_dims=(300, 128, 128))),
    ("ef", "transformer"): (5e-5, 32, dict(num_layers=2, num_heads=5, ff_dim=512)),
    ("lf", "transformer"): (5e-5, 64, dict(num_layers=2, lf_num_heads=(4, 2, 2),
                                           lf_ff_dims=(300, 128, 64))),
    ("eflf", "avg"): (5e-4, 256, {}),
    ("eflf", "lstm"): (1e-4, 32, {}),
    ("eflf", "transformer"): (5e-5, 64, {}),
}


def get_config(arg: str = "eflf,lstm") -> ml_collections.ConfigDict:
    fusion, encoder, flags = fusion_iemocap.parse(arg, ("emotion", "sentiment", "regression"))
    c = common.fusion_config(epochs=30)
    lr, batch, dims = fusion_iemocap.model_settings(TABLE8, fusion, encoder)
    c.model.update(fusion=fusion, encoder=encoder, **dims)
    c.phases.full.learning_rate, c.batch_size = lr, batch
    c.data.name = "multimodal"
    c.data.manual_dir = ""  # the folder holding mosei_senti_data.pkl and CMU_MOSEI_Labels.csd
    c.data.builder_kwargs = dict(file="mosei_senti_data.pkl", dataset="mosei", seq_len=50,
                                 emotion_file="CMU_MOSEI_Labels.csd")
    c.fusion.update(tasks="emotion+sentiment", main_task="emotion", num_emotions=6,
                    emotion_names=("Happy", "Sad", "Anger", "Surprise", "Disgust", "Fear"),
                    weights=dict(emotion=1.0, sentiment=1.0, sarcasm=0.0))
    if "emotion" in flags:
        c.fusion.tasks = "emotion"
    if "sentiment" in flags:
        c.fusion.main_task = "sentiment"
    if "regression" in flags:
        c.fusion.sentiment_loss = "regression"
    return c
