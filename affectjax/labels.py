"""The label vocabularies of the batch contract, defined once.

Expression classes are in ABAW order (the order of every ``expr`` label in affectjax:
readers map each data set's own order into it and say so); action units are ABAW's 12 in
their challenge order (the columns of every ``au`` label). Part of the pure library: it
imports nothing.
"""

EXPRESSIONS: tuple[str, ...] = (
    "Neutral", "Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise", "Other")
"""The 8 ABAW expression classes, in label order (index = ``expr`` value)."""

AU_IDS: tuple[int, ...] = (1, 2, 4, 6, 7, 10, 12, 15, 23, 24, 25, 26)
"""FACS numbers of the 12 ABAW action units, in ``au`` column order."""

AUS: tuple[str, ...] = tuple(f"AU{k}" for k in AU_IDS)
"""The 12 ABAW action-unit names (``"AU1"`` ...), in ``au`` column order."""

NUM_EXPRESSIONS = len(EXPRESSIONS)
NUM_AUS = len(AU_IDS)
