"""Image -> music: image features steer the music Transformer; the model composes.

The mapping (``docs/crossmodal.md`` has the full table and the citations):

* **mode and tempo** follow Palmer, Schloss, Xu & Prado-León (2013), "Music-color
  associations are mediated by emotion", PNAS 110(22) 8836-8841: faster music in the major
  mode goes with lighter, more saturated, yellower colours; slower music in the minor mode
  with darker, desaturated, bluer ones. Their three colour dimensions (CIELab lightness,
  chroma, yellow-blue b*) are averaged into one score ``p`` in [-1, 1]: ``p >= 0`` gives
  major, tempo = 90 + 35 p BPM (55-125);
* **register** follows lightness: lighter images, higher pitch (pitch-height / brightness
  correspondence, Marks 1987 JEP:HPP 13(3) 384-394; review in Spence 2011, Attention,
  Perception & Psychophysics 73, 971-995): a target mean pitch of 62 + 4 x lightness score;
* **density** (notes per beat) follows edge density, a visual-complexity measure
  (Rosenholtz, Li & Nakano 2007): a muselab design choice, no colour-music study behind it;
* **tonic** follows hue through Scriabin's "keyboard of light" (Prometheus, 1910), an
  artistic, not an empirical, association; grey images take Scriabin's "steel" key E-flat;
* **metre**: symmetric images get 4/4, asymmetric ones 3/4 (a muselab design choice).

The music model conditions on style, key, metre and tempo through its header tokens; the
shipped ``bach-chorale`` model always saw Tempo_80 in training, so tempo acts on playback.
Register and density have no token: :func:`compose_from_conditions` draws ``candidates``
pieces in one batch and keeps the one whose measured register and density are closest to
the targets (best-of-n reranking), so the image steers what the model writes without
retraining it.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from muselab.crossmodal.features import ImageFeatures, image_features, music_features
from muselab.errors import ConfigError, DataError
from muselab.music.tokens import Key, parse_key

if TYPE_CHECKING:
    from muselab.music.compose import Composer
    from muselab.music.tokens import Piece

PALMER = "Palmer et al. 2013 (PNAS 110:8836)"
MARKS = "Marks 1987 (JEP:HPP 13:384); Spence 2011 (APP 73:971)"
SCRIABIN = "Scriabin's keyboard of light (Prometheus, 1910; artistic, not empirical)"
DESIGN = "muselab design choice (no study behind it)"

#: Scriabin's colours for the keys (circle of fifths), approximate sRGB; Eb and Bb are
#: "steel" (grey), taken here for images without colour.
SCRIABIN_COLOURS: dict[str, tuple[int, int, int]] = {
    "C": (255, 0, 0), "G": (255, 140, 40), "D": (255, 240, 0), "A": (40, 200, 60),
    "E": (150, 210, 255), "B": (80, 140, 255), "F#": (40, 60, 255), "C#": (140, 0, 255),
    "Ab": (190, 80, 220), "F": (160, 0, 40),
}
GREY_TONIC = "Eb"

#: Anchor sentences for the text route (valence: happy - sad; arousal: energetic - calm).
VALENCE = ("happy, joyful, bright and cheerful", "sad, gloomy, dark and melancholy")
AROUSAL = ("fast, energetic, lively and exciting", "slow, calm, quiet and peaceful")
COLOUR_WORDS: dict[str, str] = {
    "C": "red", "G": "orange", "D": "yellow", "A": "green", "E": "sky blue", "B": "blue",
    "F#": "deep blue", "C#": "violet", "Ab": "purple", "F": "dark red", "Eb": "grey steel",
}


@dataclass
class MusicConditions:
    """What the composer is asked for, and why (feature -> choice, with the citation)."""

    key: str  # e.g. "D minor"
    tempo: float  # BPM
    register: int  # target mean MIDI pitch of the piece
    density: float  # target notes per beat
    style: str = "bach"
    meter: str = "4/4"
    why: dict[str, str] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)  # the features / scores used

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _clip(x: float) -> float:
    return float(min(1.0, max(-1.0, x)))


def palmer_scores(f: ImageFeatures) -> dict[str, float]:
    """Lightness, saturation and yellow-blue of ``f`` scaled to [-1, 1], and their mean ``p``.

    An image without colour scores saturation -1 and yellow-blue 0 (documented fallback).
    """
    light = _clip((f.lightness - 0.5) / 0.3)
    sat = -1.0 if f.achromatic else _clip((f.saturation - 0.25) / 0.2)
    yellow = 0.0 if f.achromatic else _clip(f.yellow_blue / 0.3)
    return {"lightness": light, "saturation": sat, "yellow_blue": yellow,
            "p": (light + sat + yellow) / 3.0}


def conditions_from_image(img: np.ndarray, *, encoder: str | Path | None = None
                          ) -> MusicConditions:
    """:class:`MusicConditions` of ``uint8 [H, W, 3]`` (see the module docstring).

    ``encoder`` (an image encoder of the shared space: ``"crossmodal-image"``, a run or a
    file) adds the image's *meaning* to its colours: the valence of its embedding
    (:func:`embedding_valence`) joins the three colour scores in ``p``, so a sad yellow
    face is not as cheerful as a laughing one. None: colours only.
    """
    f = image_features(img)
    valence = None if encoder is None else embedding_valence(img, encoder)
    return conditions_from_features(f, valence)


def embedding_valence(img: np.ndarray, encoder: str | Path) -> float:
    """Valence of an image in the shared space: 8 x (cos to the happy anchor - cos to the
    sad anchor), clipped to [-1, 1] (the same anchors as :func:`conditions_from_text`)."""
    from muselab.crossmodal.space import embed_images, embed_text

    x = embed_images([img], encoder)[0]  # [384]
    a = embed_text(list(VALENCE))  # [2, 384]
    return _clip(8.0 * float(a[0] @ x - a[1] @ x))


def conditions_from_features(f: ImageFeatures, valence: float | None = None) -> MusicConditions:
    """:class:`MusicConditions` of already computed :class:`ImageFeatures` (and, if given,
    the embedding valence of the image)."""
    s = palmer_scores(f)
    if valence is not None:
        s["embedding_valence"] = valence
        s["p"] = (3 * s["p"] + valence) / 4
    p = s["p"]
    minor = p < 0
    tonic = GREY_TONIC if f.hue is None else _scriabin_tonic(f.hue)
    key = parse_key(f"{tonic} {'minor' if minor else 'major'}")
    edges = _clip(f.edge_density / 0.25 * 2.0 - 1.0)
    meter = "4/4" if f.symmetry >= 0.9 else "3/4"
    colour = "no colour" if f.hue is None else f"hue {f.hue:.0f} deg"
    why = {
        "mode": f"{PALMER}: lightness {s['lightness']:+.2f}, saturation {s['saturation']:+.2f}, "
                f"yellow-blue {s['yellow_blue']:+.2f} -> score {p:+.2f} -> "
                f"{'minor' if minor else 'major'}",
        "tempo": f"{PALMER}: score {p:+.2f} -> {_tempo(p):.0f} BPM (55 slow .. 125 fast)",
        "register": f"{MARKS}: lightness {s['lightness']:+.2f} -> mean pitch "
                    f"{_register(s['lightness'])}",
        "density": f"{DESIGN}: edge density {f.edge_density:.3f} -> {_density(edges):.2f} "
                   "notes per beat",
        "tonic": f"{SCRIABIN}: {colour} -> {tonic}",
        "meter": f"{DESIGN}: symmetry {f.symmetry:.2f} -> {meter}",
    }
    if valence is not None:
        why["mode"] += (f" (with the image embedding's valence {valence:+.2f} as a fourth "
                        "score: Palmer's emotional mediation, read in the shared space)")
    return MusicConditions(key=str(key), tempo=_tempo(p), register=_register(s["lightness"]),
                           density=_density(edges), style="bach", meter=meter, why=why,
                           source={"image": f.as_dict(), "scores": s})


def _tempo(p: float) -> float:
    return float(round(90.0 + 35.0 * p))


def _register(light: float) -> int:
    return int(round(62.0 + 4.0 * light))


def _density(score: float) -> float:
    return round(4.0 + 1.0 * score, 2)  # 3..5 notes per beat (chorales: about 4)


def _scriabin_tonic(hue: float) -> str:
    """The key whose Scriabin colour has the nearest CIELab hue angle."""
    return min(_scriabin_hues().items(), key=lambda kv: _angle(kv[1], hue))[0]


def _angle(a: float, b: float) -> float:
    d = abs(a - b) % 360.0
    return min(d, 360.0 - d)


@lru_cache(maxsize=1)
def _scriabin_hues() -> dict[str, float]:
    out: dict[str, float] = {}
    for tonic, rgb in SCRIABIN_COLOURS.items():
        hue = image_features(np.array([[rgb]], dtype=np.uint8)).hue
        assert hue is not None, tonic
        out[tonic] = hue
    return out


def conditions_from_text(theme: str) -> MusicConditions:
    """:class:`MusicConditions` of a theme through the MiniLM text embedding.

    Valence (happy - sad) and arousal (energetic - calm) are cosine similarities to anchor
    sentences; they stand in for Palmer's emotional mediation: valence sets the mode,
    arousal the tempo and density, valence the register; the tonic is Scriabin's key of the
    colour word nearest to the theme. MiniLM is an English model: a theme without Latin
    letters still gets conditions, with a warning in ``why`` (documented fallback).
    """
    from muselab.models.text_encoder import embed_texts

    if not isinstance(theme, str) or not theme.strip():
        raise ConfigError("theme is empty: give a few words, e.g. 'autumn rain at night'")
    colours = list(COLOUR_WORDS.items())
    texts = [theme, *VALENCE, *AROUSAL, *(w for _, w in colours)]
    e = embed_texts(texts)  # [1 + 4 + C, 384] unit norm
    sim = e[1:] @ e[0]  # [4 + C]
    valence, arousal = _clip(8.0 * float(sim[0] - sim[1])), _clip(8.0 * float(sim[2] - sim[3]))
    tonic = colours[int(np.argmax(sim[4:]))][0]
    minor = valence < 0
    key = parse_key(f"{tonic} {'minor' if minor else 'major'}")
    p = (valence + arousal) / 2.0
    why = {
        "mode": f"{PALMER} (emotion as mediator): valence {valence:+.2f} -> "
                f"{'minor' if minor else 'major'}",
        "tempo": f"{PALMER}: (valence + arousal) / 2 = {p:+.2f} -> {_tempo(p):.0f} BPM",
        "register": f"{MARKS}: valence {valence:+.2f} as brightness -> {_register(valence)}",
        "density": f"{DESIGN}: arousal {arousal:+.2f} -> {_density(arousal):.2f} notes/beat",
        "tonic": f"{SCRIABIN}: nearest colour word {COLOUR_WORDS[tonic]!r} -> {tonic}",
        "meter": f"{DESIGN}: 4/4",
    }
    if not re.search(r"[A-Za-z]", theme):
        why["language"] = ("the theme has no Latin letters; MiniLM is an English model, so "
                           "these conditions are unreliable (translate the theme)")
    return MusicConditions(key=str(key), tempo=_tempo(p), register=_register(valence),
                           density=_density(arousal), style="bach", meter="4/4", why=why,
                           source={"theme": theme, "valence": valence, "arousal": arousal})


@lru_cache(maxsize=4)
def _composer(model: str | None) -> Composer:
    from muselab.music.compose import Composer

    return Composer.load(model)


def steering_cost(piece: Piece, cond: MusicConditions) -> float:
    """Distance of a piece's register (semitones / 3) and density (notes per beat / 0.6)
    from the targets: the best-of-n criterion of :func:`compose_from_conditions`."""
    m = music_features(piece)
    return math.hypot((m.register - cond.register) / 3.0, (m.density - cond.density) / 0.6)


def compose_from_conditions(cond: MusicConditions, *, bars: int = 16, seed: int = 0,
                            out: Path, model: str | None = None, candidates: int = 16,
                            wav: bool = True) -> dict[str, Any]:
    """Compose under ``cond``: ``candidates`` pieces in one batch, keep the closest.

    Writes ``out``.mid/.png/.json (+ .wav when fluidsynth is there) and returns
    ``{"files": {...}, "meta": {...}}``; the meta holds the conditions, the reasons, the
    measured features of the kept piece, every candidate's cost, seed and model.
    """
    from muselab.music.compose import parse_meter, write_piece

    if not 1 <= candidates <= 64:
        raise ConfigError(f"--candidates {candidates} is out of range [1, 64]")
    key: Key = parse_key(cond.key)
    composer = _composer(model)
    pieces = composer.compose(style=cond.style, bars=bars, key=key,
                              time_signature=parse_meter(cond.meter), tempo=cond.tempo,
                              n=candidates, seed=seed)
    pieces = [p for p in pieces if p.notes]
    if not pieces:
        raise DataError(f"the model wrote no notes for seed {seed}; try another seed")
    costs = [steering_cost(p, cond) for p in pieces]
    best = int(np.argmin(costs))
    piece = pieces[best]
    meta: dict[str, Any] = {
        "kind": "text2music" if "theme" in cond.source else "image2music",
        "model": composer.source, "seed": seed, "bars": bars,
        "conditions": cond.as_dict(), "candidates": candidates, "chosen": best,
        "candidate_costs": [round(c, 4) for c in costs],
        "achieved": music_features(piece).as_dict(),
        "achieved_key_analysed": music_features(piece, analyse=True).key,
    }
    files = write_piece(piece, Path(out), meta, wav=wav)
    return {"files": files, "meta": meta}


def read_image(path: str | Path, max_side: int = 512) -> np.ndarray:
    """``uint8 [H, W, 3]`` of an image file (first frame, transparency on white), shrunk so
    that its longer side is at most ``max_side``; a :class:`DataError` naming the file."""
    from PIL import Image

    from muselab.data.imagefolder import describe_failure, to_rgb

    p = Path(path)
    if not p.is_file():
        raise DataError(f"image {p}: no such file")
    try:
        with Image.open(p) as im:
            im.load()
            rgb = to_rgb(im, (255, 255, 255))
    except Exception as exc:  # Pillow raises many types for corrupt data
        raise DataError(f"image {p}: {describe_failure(exc, p.suffix or 'file')}") from exc
    rgb.thumbnail((max_side, max_side))
    return np.asarray(rgb, dtype=np.uint8)


def image2music(image: str | Path, *, out: Path, bars: int = 16, seed: int = 0,
                model: str | None = None, candidates: int = 16, wav: bool = True,
                encoder: str | Path | None = None) -> dict[str, Any]:
    """Read ``image``, derive :class:`MusicConditions` (``encoder``: see
    :func:`conditions_from_image`), compose; the image's path and features go into the
    piece's metadata."""
    img = read_image(image)
    cond = conditions_from_image(img, encoder=encoder)
    cond.source["file"] = str(image)
    return compose_from_conditions(cond, bars=bars, seed=seed, out=out, model=model,
                                   candidates=candidates, wav=wav)
