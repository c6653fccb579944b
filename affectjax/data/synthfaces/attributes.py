"""SynthFaces attribute view: 40 binary attributes, the built-in stand-in for CelebA's 40.

`SynthFaces(..., attributes=True)` adds ``attr`` int32 (40,) in 0/1 to every example, so a
CelebA-style model (one binary task per attribute, as in the EMA loss-balancing paper's
CelebA experiments) runs without the licensed data. Every attribute is an exact function
of the sampled parameters (`params.sample_params`), never of the pixels, and is unchanged
by a horizontal flip. Expressions are the drawn (clean) class, also under ``label_noise``.

| columns | attributes                   | definition                                      |
|---------|------------------------------|-------------------------------------------------|
| 0-11    | AU1 ... AU26 (ABAW order)    | the `au` label: intensity >= 0.3                |
| 12-19   | Neutral ... Other (ABAW)     | the expression, one-vs-rest                     |
| 20      | Positive_Valence             | valence > 0                                     |
| 21      | High_Arousal                 | arousal > 0                                     |
| 22      | Calm                         | abs(valence) < 0.25 and abs(arousal) < 0.25     |
| 23      | Strong_Expression            | largest AU intensity >= 0.7                     |
| 24      | Smiling                      | AU6 and AU12 (a Duchenne smile; AU12 alone is column 6) |
| 25      | Mouth_Open                   | AU25 or AU26                                    |
| 26      | Brows_Raised                 | AU1 or AU2                                      |
| 27-31   | Black/Brown/Blond/Red/Gray_Hair | hair colour (brown = dark brown or brown), not bald |
| 32-35   | Bald, Bangs, Long_Hair, Bun  | hair style (bangs = the fringe style)           |
| 36      | Pale_Skin                    | skin tone in the lightest quarter (< 0.25)      |
| 37      | Bushy_Eyebrows               | brow thickness > 1.1 (drawn in [0.8, 1.25])     |
| 38      | Arched_Eyebrows              | brow arch > 1.1 (drawn in [0.4, 1.5])           |
| 39      | Big_Nose                     | nose width > 1.1 (drawn in [0.85, 1.2])         |

The width equals CelebA's, so both fill the data contract's ``attr`` key (int32 (40,),
-1 = missing) and one model head serves either; the names differ, the column count is
what the batch structure needs.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from affectjax.labels import AUS, EXPRESSIONS
from affectjax.data.synthfaces.labels import AU_INDEX
from affectjax.data.synthfaces.params import HAIR_COLOURS, HAIR_STYLES

_AFFECT = ("Positive_Valence", "High_Arousal", "Calm", "Strong_Expression", "Smiling",
           "Mouth_Open", "Brows_Raised")
_HAIR = ("Black_Hair", "Brown_Hair", "Blond_Hair", "Red_Hair", "Gray_Hair")
_STYLES = ("Bald", "Bangs", "Long_Hair", "Bun")
_FACE = ("Pale_Skin", "Bushy_Eyebrows", "Arched_Eyebrows", "Big_Nose")
SYNTHFACES_ATTRIBUTES: tuple[str, ...] = AUS + EXPRESSIONS + _AFFECT + _HAIR + _STYLES + _FACE
NUM_ATTRIBUTES = len(SYNTHFACES_ATTRIBUTES)
assert NUM_ATTRIBUTES == 40

# Hair colour index (`params.HAIR_COLOURS`) -> column among _HAIR.
_HAIR_OF_COLOUR = {"black": 0, "dark_brown": 1, "brown": 1, "blond": 2, "red": 3, "grey": 4}
_STYLE_NAMES = {"Bald": "bald", "Bangs": "fringe", "Long_Hair": "long", "Bun": "bun"}


def attributes_from_params(p: Mapping[str, np.ndarray]) -> np.ndarray:
    """The 40 attributes of `SYNTHFACES_ATTRIBUTES` for a batch of sampled parameters.

    Args:
      p: `sample_params` output (leading batch axis B): reads ``au`` (intensities),
        ``expr``, ``va``, ``hair_colour``, ``hair_style``, ``skin_tone``, ``brow_thick``,
        ``brow_arch`` and ``nose_w``.

    Returns:
      int32 (B, 40) in 0/1, columns in the order of `SYNTHFACES_ATTRIBUTES`.
    """
    intensity = np.asarray(p["au"], np.float64)
    au = intensity > 0  # an AU is either drawn (>= 0.3) or exactly 0
    on = lambda au_id: au[:, AU_INDEX[au_id]]
    expr = np.asarray(p["expr"])
    v, a = np.asarray(p["va"], np.float64).T
    style = np.asarray(p["hair_style"])
    bald = style == HAIR_STYLES.index("bald")
    colour = np.asarray(p["hair_colour"])
    hair = np.zeros((len(expr), len(_HAIR)), bool)
    for index, name in enumerate(HAIR_COLOURS):
        hair[:, _HAIR_OF_COLOUR[name]] |= colour == index
    columns = [
        au,
        expr[:, None] == np.arange(len(EXPRESSIONS)),
        np.stack([v > 0, a > 0, (np.abs(v) < 0.25) & (np.abs(a) < 0.25),
                  intensity.max(axis=1) >= 0.7, on(6) & on(12), on(25) | on(26),
                  on(1) | on(2)], axis=1),
        hair & ~bald[:, None],
        np.stack([style == HAIR_STYLES.index(_STYLE_NAMES[n]) for n in _STYLES], axis=1),
        np.stack([np.asarray(p["skin_tone"]) < 0.25, np.asarray(p["brow_thick"]) > 1.1,
                  np.asarray(p["brow_arch"]) > 1.1, np.asarray(p["nose_w"]) > 1.1], axis=1),
    ]
    return np.concatenate(columns, axis=1).astype(np.int32)
