"""SynthAffect: procedural word-aligned text/audio/visual sequences with exact affect labels.

A stand-in for the multimodal sets of the weakly-supervised multimodal MTL paper
(IEMOCAP, CMU-MOSEI, MUStARD in the MulT pickle layout: text 300-d GloVe, audio 74-d
COVAREP, visual 35-d OpenFace, 50 aligned steps), so every fusion config runs without a
download.

Generative story (one utterance; every draw comes from a generator seeded by
``(seed, variant, split, index)``, and the "world" (projection matrices, vocabulary) from
``seed`` alone, so all variants and splits share one world and a teacher trained on one
variant transfers to another):

1. **Emotions.** A latent emotion set over the 7-emotion universe ``LATENT_EMOTIONS``
   (Neutral, Happy, Sad, Anger, Surprise, Disgust, Fear): IEMOCAP-like utterances carry
   exactly one of Neutral/Happy/Sad/Anger; the others a primary emotion plus, with
   probability 0.3, a co-occurring second one (multi-label).
2. **Affect.** Felt valence ``v`` and arousal ``a`` are the mean circumplex prototype of the
   active emotions plus Gaussian noise, clipped to [-1, 1].
3. **Sarcasm** (flag ``s``; balanced for MUStARD-like, rare otherwise). A sarcastic speaker
   feels a little more negative (``v -= delta``) and says something literally more
   positive: the literal polarity carried by the words is ``p = v + 2 * delta`` with
   ``delta ~ U(0.2, 0.3)``, while a sincere speaker has ``p = v``. The text therefore says
   positive while prosody and face say negative. Each modality alone shifts by only
   ``+-delta`` against a valence spread of ~0.6 (near chance), but ``p - v`` separates the
   two classes, so only cross-modal fusion detects sarcasm.
4. **Text** (S, 300): each step is a word vector from a fixed random vocabulary; about a
   quarter of the words are sentiment-bearing and add ``p * u_polarity``, a few add the
   active emotions' word directions.
5. **Audio** (S, 74) and **visual** (S, 35): a smooth envelope over the utterance carries
   felt valence, arousal and a weak sustained emotion pattern, plus a per-utterance speaker
   offset and per-step noise. The visual emotion pattern is strong only in a **burst** of
   3 steps at a random time (a micro-expression), so max-pooling or a sequence model
   beats time-averaging.
6. **Length.** Utterances last ``L ~ U[S/2, S]`` steps and are zero-padded at the start,
   as in the MulT pickles.

Labels (variant-dependent, like the real sets; unobserved ones are "missing"):
``emotion`` int32 multi-hot (E,) (-1 = missing), ``sentiment`` float32 ``3 v`` in [-3, 3]
(0.0 when missing, i.e. where ``sentiment_binary`` is -1), ``sentiment_binary`` int32
``v >= 0``, ``sarcasm`` int32. ``observe_all=True`` exposes every latent label.
"""

from typing import Mapping

import numpy as np

from affectjax import registry

LATENT_EMOTIONS = ("Neutral", "Happy", "Sad", "Anger", "Surprise", "Disgust", "Fear")
# Russell-circumplex (valence, arousal) prototype of each latent emotion.
_PROTOTYPES = np.array(
    [[0.0, -0.1], [0.8, 0.5], [-0.7, -0.4], [-0.6, 0.8], [0.3, 0.8], [-0.7, 0.3], [-0.6, 0.7]],
    np.float64,
)
MOSEI_EMOTIONS = ("Happy", "Sad", "Anger", "Surprise", "Disgust", "Fear")
IEMOCAP_EMOTIONS = ("Neutral", "Happy", "Sad", "Anger")

# variant -> observed emotions, observed tasks, sarcasm rate, default split sizes.
VARIANTS: Mapping[str, dict] = {
    "iemocap": dict(
        emotions=IEMOCAP_EMOTIONS, tasks=("emotion",), sarcasm_rate=0.1,
        sizes={"train": 7000, "validation": 1000, "test": 1500}),
    "mosei": dict(
        emotions=MOSEI_EMOTIONS, tasks=("emotion", "sentiment"), sarcasm_rate=0.1,
        sizes={"train": 4000, "validation": 500, "test": 1000}),
    "mustard": dict(
        emotions=MOSEI_EMOTIONS, tasks=("sarcasm",), sarcasm_rate=0.5,
        sizes={"train": 500, "validation": 100, "test": 100}),
}
SPLITS = ("train", "validation", "test")
DIMS = {"text": 300, "audio": 74, "visual": 35}
_VOCAB = 400
_BURST = 3


def _unit(rng: np.random.Generator, *shape: int) -> np.ndarray:
    x = rng.normal(size=shape)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


class _World:
    """Projection matrices and vocabulary shared by every variant and split of one seed."""

    def __init__(self, seed: int):
        rng = np.random.default_rng([seed, 0x5A])
        k = len(LATENT_EMOTIONS)
        self.vocab = rng.normal(scale=0.3, size=(_VOCAB, DIMS["text"]))
        self.text_polarity = 3.0 * _unit(rng, DIMS["text"])
        self.text_emotion = 2.5 * _unit(rng, k, DIMS["text"])
        self.audio = {n: _unit(rng, *s) * np.sqrt(s[-1]) for n, s in
                      dict(valence=(74,), arousal=(74,), emotion=(k, 74)).items()}
        self.visual = {n: _unit(rng, *s) * np.sqrt(s[-1]) for n, s in
                       dict(valence=(35,), arousal=(35,), emotion=(k, 35)).items()}


class SynthAffect:
    """Random-access source of SynthAffect utterances (see the module docstring).

    Args:
        variant: "iemocap" (4 emotions), "mosei" (6 emotions + sentiment) or "mustard"
            (balanced sarcasm, ~700 items).
        split: "train", "validation" or "test".
        seed: world and sampling seed.
        seq_len: aligned sequence length S.
        num_examples: overrides the variant's default split size.
        observe_all: if True every latent label is given; otherwise only the variant's.
    """

    def __init__(self, variant: str, split: str, *, seed: int = 0, seq_len: int = 50,
                 num_examples: int | None = None, observe_all: bool = False):
        registry.lookup(VARIANTS, variant, "SynthAffect variant")
        if split not in SPLITS:
            raise registry.unknown_name_error("SynthAffect split", split, SPLITS)
        if seq_len < 2 * _BURST:
            raise ValueError(f"seq_len must be >= {2 * _BURST}, got {seq_len}")
        self.variant, self.split, self.seed, self.seq_len = variant, split, seed, seq_len
        self.spec = VARIANTS[variant]
        self.num_examples = self.spec["sizes"][split] if num_examples is None else num_examples
        self.emotions = self.spec["emotions"]
        self.observe_all = observe_all
        self._emotion_idx = np.array([LATENT_EMOTIONS.index(e) for e in self.emotions])
        self._key = [seed, sorted(VARIANTS).index(variant), SPLITS.index(split)]
        self._world = _World(seed)

    def __len__(self) -> int:
        return self.num_examples

    def _latent(self, rng: np.random.Generator) -> tuple[np.ndarray, float, float, int, float]:
        k = len(LATENT_EMOTIONS)
        active = np.zeros(k, bool)
        if self.variant == "iemocap":
            active[rng.choice(self._emotion_idx)] = True
        else:
            active[rng.integers(k)] = True
            if rng.random() < 0.3:
                active[1 + rng.integers(k - 1)] = True
        if active[1:].any():
            active[0] = False  # Neutral means no other emotion.
        sarcasm = int(rng.random() < self.spec["sarcasm_rate"])
        proto = _PROTOTYPES[active].mean(0)
        delta = rng.uniform(0.2, 0.3) * sarcasm
        valence = float(np.clip(proto[0] + rng.normal(scale=0.3) - delta, -1, 1))
        arousal = float(np.clip(proto[1] + rng.normal(scale=0.3), -1, 1))
        literal = valence + 2.0 * delta
        return active, valence, arousal, sarcasm, literal

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        if not 0 <= index < self.num_examples:
            raise IndexError(f"index {index} out of range for {self.num_examples} examples")
        rng = np.random.default_rng(self._key + [int(index)])
        w, s = self._world, self.seq_len
        active, valence, arousal, sarcasm, literal = self._latent(rng)
        emo = active.astype(np.float64)
        length = int(rng.integers(s // 2, s + 1))
        t = np.linspace(0.0, np.pi, length)
        envelope = (0.5 + 0.5 * np.sin(t))[:, None]

        words = w.vocab[rng.integers(_VOCAB, size=length)]
        polar = (rng.random(length) < 0.25)[:, None]
        emo_words = (rng.random(length) < 0.15)[:, None]
        text = (words + polar * literal * w.text_polarity
                + emo_words * (emo @ w.text_emotion)
                + rng.normal(scale=0.1, size=(length, DIMS["text"])))

        burst = np.zeros((length, 1))
        start = int(rng.integers(0, length - _BURST + 1))
        burst[start:start + _BURST] = 1.0
        seqs = {"text": text}
        for name, proj, sustained, flash, noise in (("audio", w.audio, 0.4, 0.0, 1.0),
                                                    ("visual", w.visual, 0.0, 3.0, 1.5)):
            affect = valence * proj["valence"] + arousal * proj["arousal"]
            pattern = emo @ proj["emotion"]
            speaker = rng.normal(scale=0.3, size=proj["valence"].shape)
            dim = proj["valence"].shape[0]
            seqs[name] = (envelope * (affect + sustained * pattern) + burst * flash * pattern
                          + speaker + rng.normal(scale=noise, size=(length, dim)))

        out = {}
        for name, x in seqs.items():
            padded = np.zeros((s, DIMS[name]), np.float32)
            padded[s - length:] = x
            out[name] = padded
        tasks = set(self.spec["tasks"]) | ({"emotion", "sentiment", "sarcasm"}
                                           if self.observe_all else set())
        observed = active[self._emotion_idx].astype(np.int32)
        out["emotion"] = observed if "emotion" in tasks else np.full_like(observed, -1)
        has_sent = "sentiment" in tasks
        out["sentiment"] = np.float32(3.0 * valence if has_sent else 0.0)
        out["sentiment_binary"] = np.int32(valence >= 0 if has_sent else -1)
        out["sarcasm"] = np.int32(sarcasm if "sarcasm" in tasks else -1)
        return out
