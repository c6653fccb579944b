"""SynthFaces: a built-in procedural face data set whose every label is exact.

Generative story (per example i, all randomness from a generator seeded by (seed, domain, i)):

1. Expression. Draw one of the 8 ABAW classes (Neutral, Anger, Disgust, Fear, Happiness,
   Sadness, Surprise, Other) from the domain's class prior.
2. Action units (FACS prototypes, Ekman & Friesen): happiness AU6+12 (+25 half the time);
   sadness AU1+4+15; surprise AU1+2 with AU25, AU26 or both (AU5 is not among the 12); fear
   AU1+2+4+25 (+26 sometimes; AU20 not among the 12); anger AU4+7 with AU23, AU24 or both;
   disgust AU10+15 (AU9 is not among the 12); neutral none; "other" a random mix of 1-3 AUs
   that contains no basic prototype. One global intensity g ~ U(domain range within
   [0.3, 1]) drives every prototype AU (each jittered by +-15 %, clipped to [0.3, 1]); each
   other AU is weakly active (0.3-0.6) at the domain's low extra rate (never for neutral
   or other).
   The binary `au` label is 1 exactly when the AU is drawn (intensity >= 0.3).
3. Valence/arousal: the class's point on Russell's circumplex (neutral (0, 0), happiness
   (0.8, 0.5), sadness (-0.7, -0.4), anger (-0.6, 0.7), fear (-0.6, 0.8), surprise (0.2, 0.8),
   disgust (-0.7, 0.3); other uniform in [-0.8, 0.8]^2) times g, plus N(0, 0.08^2), clipped.
4. Geometry: a parametric cartoon face (egg-shaped outline, almond eyes, tapered quadratic
   brows, nose, two-lip mouth) with random proportions. Each AU is a local deformation:
   AU1 inner brow raise (+ forehead wrinkles), AU2 outer brow raise (+ forehead wrinkles),
   AU4 brows down and together (+ glabella furrows), AU6 lower lid raised, cheek bulge,
   nasolabial folds, AU7 both lids tightened, AU10 upper lip raised (teeth show), AU12 lip
   corners up and out (+ smile lines), AU15 lip corners down (+ lines below the corners),
   AU23 lips thinned and mouth narrowed, AU24 lips pressed thin and closed, AU25 lips parted
   (inner mouth and teeth visible), AU26 jaw drop (mouth opens taller, chin lowers).
5. Pose and appearance: in-plane rotation, scale, translation, mild yaw (horizontal shift and
   squeeze of the inner features), skin tone, hair style (short, long, fringe, bald, bun)
   and colour, iris colour, clothes.
6. Raster (`render.py`): signed-distance shapes with anti-aliasing on the pixel grid; the
   parsing mask comes from the same shapes (Helen's 11 classes; the neck, shoulders and any
   occluder are background).
7. Nuisances: background clutter, occluder (a rounded rectangle over the face, parsing 0),
   lighting gradient and colour tint, blur, Gaussian noise, grayscale and low-resolution
   rendering (domain-dependent, see `domains.py`).
8. Optional label noise (`affectjax.data.label_noise`): `expr` becomes the noisy label and
   `expr_clean` keeps the drawn one.
9. Optional attribute view (``attributes=True``, `attributes.py`): `attr` int32 (40,) in 0/1,
   the stand-in for CelebA's 40 binary attributes, named by `SYNTHFACES_ATTRIBUTES`: the 12
   AUs, the 8 expressions one-vs-rest, 7 affect attributes (positive valence, high arousal,
   calm, strong expression, smiling = AU6 + AU12, mouth open = AU25 or AU26, brows raised =
   AU1 or AU2) and 13 appearance attributes (hair colour and style, pale skin, bushy or
   arched eyebrows, big nose), each an exact function of the drawn parameters. Off by
   default: without it the examples, and data prepared from them, are what they were.

Landmarks are the deformed geometry's eye centres, nose tip and mouth corners after the pose
transform, in pixels (x, y) of the stored image (pixel (j, i) covers [j, j + 1) x [i, i + 1),
so its centre is at x = j + 0.5, y = i + 0.5, as in every reader).
Order: left eye, right eye, nose tip, left mouth corner, right mouth corner, where "left" is the
SUBJECT's left, which appears on the IMAGE's right (larger x in a frontal face); the parsing
classes 2/4 (left brow/eye) follow the same convention.

Usage:

    ds = SynthFaces(10_000, seed=0, image_size=64, domain="wild")
    ex = ds[3]                 # dict: image, expr, va, va_mask, au, landmarks, ...
    SynthFaces(100, attributes=True)[0]["attr"]   # int32 (40,), SYNTHFACES_ATTRIBUTES order
    batch = ds.batch(range(64))
    p = ds.params([3]); p["au"][:, 6] = 0.0; ds.render(p)   # same face without AU12

    python -m affectjax.data.synthfaces --preview faces.png --domain wild
    python -m affectjax.data.synthfaces --bench
"""

from affectjax.data.synthfaces.attributes import SYNTHFACES_ATTRIBUTES, attributes_from_params
from affectjax.data.synthfaces.dataset import SynthFaces
from affectjax.data.synthfaces.domains import DOMAINS, Domain, get_domain
from affectjax.data.synthfaces.geometry import landmarks
from affectjax.data.synthfaces.labels import AU_IDS, CIRCUMPLEX, EXPRESSIONS, PROTOTYPES
from affectjax.data.synthfaces.params import sample_params
from affectjax.data.synthfaces.render import render

# Bumped whenever the same (seed, domain, index) renders differently; data caches key on it.
RENDERER_VERSION = "2"

PARSING_CLASSES = ("background", "skin", "left_brow", "right_brow", "left_eye", "right_eye",
                   "nose", "upper_lip", "inner_mouth", "lower_lip", "hair")

__all__ = ["SynthFaces", "DOMAINS", "Domain", "get_domain", "render", "sample_params",
           "landmarks", "EXPRESSIONS", "AU_IDS", "PROTOTYPES", "CIRCUMPLEX", "PARSING_CLASSES",
           "RENDERER_VERSION", "SYNTHFACES_ATTRIBUTES", "attributes_from_params"]
