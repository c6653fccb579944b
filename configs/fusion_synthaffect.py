"""Weakly-supervised multimodal MTL (paper 3) on SynthAffect: the miniature of its tables.

    python train.py --config configs/fusion_synthaffect.py:quick

The default (``mustard``) is the paper's sarcasm setting: EF-LF-LSTM on the small
MUStARD-like set (500 training utterances), which labels sarcasm only, trained for
sarcasm with weak emotion labels from a teacher trained on the IEMOCAP-like set and weak
binarised sentiment labels from a teacher trained on the CMU-MOSEI-like set
(`affectjax.methods.fusion.teachers`; each teacher is trained once and shared by every
run that uses it), each weak task weighed by its teacher's validation accuracy.
``iemocap`` is the paper's Table 3 setting: emotions alone on the IEMOCAP-like set.

Arguments (comma-separated): ``quick`` (24 steps per utterance, 2,000 training
utterances per teacher set, small encoders, 6 epochs) or ``full`` (50 steps, the
variants' default sizes, the paper's Table 7 dimensions); ``mustard`` (default) or
``iemocap``; a fusion ``ef``/``lf``/``eflf`` and an encoder ``avg``/``lstm``/
``transformer``. Every value is also a plain override, e.g. ``--config.fusion.tasks=
sarcasm`` (no weak labels), ``--config.model.modalities=text`` (text only).

The tables of docs/fusion.md, five seeds each (the paper's seeds 0-4):

    python -m affectjax.sweep --config configs/fusion_synthaffect.py:quick,iemocap \\
        --seeds 0,1,2,3,4 --grid model.fusion=ef,lf,eflf \\
        --grid model.encoder=avg,lstm,transformer --workdir runs/sweeps/fusion_table3
    python -m affectjax.sweep --config configs/fusion_synthaffect.py:quick --seeds 0,1,2,3,4 \\
        --grid fusion.tasks=sarcasm,emotion+sarcasm,sentiment+sarcasm,emotion+sentiment+sarcasm \\
        --workdir runs/sweeps/fusion_table4
    python -m affectjax.sweep --config configs/fusion_synthaffect.py:quick --seeds 0,1,2,3,4 \\
        --set fusion.tasks=sarcasm \\
        --grid model.modalities=text,audio+visual,text+audio+visual \\
        --workdir runs/sweeps/fusion_modalities
"""

import ml_collections

from affectjax.data import synthaffect
from configs import common

_SETTINGS = ("quick", "full")
_VARIANTS = ("mustard", "iemocap")
_FUSIONS = ("ef", "lf", "eflf")
_ENCODERS = ("avg", "lstm", "transformer")


def _parse(arg: str) -> dict[str, str]:
    chosen = {"setting": "full", "variant": "mustard", "fusion": "eflf", "encoder": "lstm"}
    for token in filter(None, (t.strip() for t in arg.split(","))):
        for key, choices in (("setting", _SETTINGS), ("variant", _VARIANTS),
                             ("fusion", _FUSIONS), ("encoder", _ENCODERS)):
            if token in choices:
                chosen[key] = token
                break
        else:
            raise ValueError(f"config argument {token!r}; choose from "
                             f"{list(_SETTINGS + _VARIANTS + _FUSIONS + _ENCODERS)}")
    return chosen


def _data(variant: str, quick: bool) -> dict:
    kwargs = dict(variant=variant, seed=0, seq_len=24 if quick else 50)
    if quick:
        kwargs["sizes"] = (dict(train=500, validation=400, test=400) if variant == "mustard"
                           else dict(train=2000, validation=500, test=500))
    return kwargs


def get_config(arg: str = "full") -> ml_collections.ConfigDict:
    chosen = _parse(arg)
    quick = chosen["setting"] == "quick"
    c = common.fusion_config(epochs=8 if quick else 30)
    c.model.update(fusion=chosen["fusion"], encoder=chosen["encoder"])
    if quick:
        c.model.update(hidden_dim=32, lf_hidden_dims=(32, 16, 16), num_heads=4,
                       lf_num_heads=(4, 2, 2), ff_dim=64, lf_ff_dims=(64, 32, 32),
                       num_layers=1)
        c.batch_size = 32
        c.phases.full.learning_rate = 1e-3
    c.data.builder_kwargs = _data(chosen["variant"], quick)
    teacher_epochs = 6 if quick else 30
    if chosen["variant"] == "iemocap":
        c.fusion.update(tasks="emotion", main_task="emotion", num_emotions=4,
                        emotion_names=synthaffect.IEMOCAP_EMOTIONS)
        return c
    c.fusion.update(tasks="emotion+sentiment+sarcasm", main_task="sarcasm", num_emotions=4,
                    emotion_names=synthaffect.IEMOCAP_EMOTIONS)
    c.fusion.weak = ml_collections.ConfigDict(dict(
        emotion=dict(file="", data=dict(builder_kwargs=_data("iemocap", quick)),
                     model=dict(fusion="eflf", encoder="lstm"), seed=0, epochs=teacher_epochs),
        sentiment=dict(file="", data=dict(builder_kwargs=_data("mosei", quick)),
                       model=dict(fusion="eflf", encoder="lstm"), seed=0,
                       epochs=teacher_epochs)))
    return c
