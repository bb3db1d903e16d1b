"""Theme -> triptych: a poem, an image and a piece of music from one theme.

All three parts are conditioned on the same theme embedding, the MiniLM sentence vector
of the theme (:func:`muselab.models.text_encoder.embed_texts`, 384-d, unit norm):

* **image**: text-to-image diffusion with that vector as the prompt embedding
  (:meth:`~muselab.image.diffusion_pipeline.DiffusionPipeline.text2img`, classifier-free
  guidance, Ho & Salimans 2022);
* **music**: :func:`muselab.crossmodal.image2music.conditions_from_text` reads valence and
  arousal off that vector (Palmer et al. 2013's emotional mediation) to set key, mode,
  tempo, register and density, then the music Transformer composes under them;
* **poem**: the poem models take words, not vectors, so the vector chooses the words:
  for ``--lang en`` the theme itself opens the poem, or, when the verse model does not
  know all its words, the theme's words nearest to the vector that it does know; for
  ``--lang zh`` the title is made of the classical image characters (a small lexicon of
  characters with English glosses, :data:`ZH_IMAGERY`) whose gloss embeddings are nearest
  to the vector (a theme in Chinese characters is used as the title as it is).

Everything goes into one folder and a zip of it: ``poem.txt``, ``image.png``,
``music.mid/.wav/.png/.json``, ``index.html`` and ``manifest.json``, the one provenance
record listing each part with its sha256, seed and model, plus the theme and a hash of
its embedding.
"""

from __future__ import annotations

import hashlib
import html
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from muselab import __version__
from muselab.errors import ConfigError
from muselab.io import atomic_open, atomic_write, ensure_dir, sha256_file, write_json

LANGS = ("zh", "en")
#: The text-to-image model used by default (a zoo name; see docs/inspire.md).
DEFAULT_IMAGE_MODEL = "emoji-text32"
#: Classical Chinese image characters and their English glosses (simplified forms, all in
#: the tang-poems vocabulary). The theme vector picks the title from these.
ZH_IMAGERY: dict[str, str] = {
    "春": "spring, springtime", "夏": "summer, summer heat", "秋": "autumn, fall",
    "冬": "winter, cold season", "雨": "rain, rainy", "雪": "snow, snowy", "风": "wind, breeze",
    "月": "moon, moonlight", "夜": "night, at night", "山": "mountain, hills",
    "水": "water", "江": "river", "海": "sea, ocean", "花": "flowers, blossom",
    "柳": "willow tree", "云": "clouds, cloudy", "日": "sun, sunshine, day", "星": "stars",
    "舟": "boat, ship", "酒": "wine, drinking", "梅": "plum blossom", "竹": "bamboo",
    "松": "pine tree", "鸟": "birds", "雁": "wild geese", "楼": "tower, pavilion",
    "城": "city, town", "家": "home, family", "乡": "hometown, homesickness",
    "友": "friend, friendship", "别": "farewell, parting", "思": "longing, thinking of",
    "愁": "sorrow, sadness, melancholy", "归": "return, going home", "梦": "dream",
    "灯": "lamp, lantern light", "烟": "mist, smoke", "霜": "frost", "叶": "leaves",
    "草": "grass", "林": "forest, woods", "寺": "temple", "钟": "bell", "笛": "flute music",
    "琴": "zither, music", "马": "horse, riding", "剑": "sword, warrior", "战": "war, battle",
    "老": "old age", "少": "youth", "喜": "joy, happiness", "笑": "laughter, smiling",
    "泪": "tears, weeping", "心": "heart, love", "客": "traveller, guest", "路": "road, path",
    "晚": "evening, dusk", "晓": "dawn, early morning", "寒": "cold, chilly", "暖": "warm",
    "静": "quiet, calm, still", "光": "light, bright",
}
#: Most title characters chosen for Chinese poems, and the least score to keep a neighbour.
ZH_TITLE_CHARS, ZH_MIN_COS = 3, 0.25
_STOP = {"a", "an", "the", "at", "of", "in", "on", "and", "or", "to", "with", "by", "for"}


@dataclass
class TriptychResult:
    """What :func:`make_triptych` wrote."""

    folder: Path
    zip: Path
    manifest: dict[str, Any]


def check_lang(lang: str) -> str:
    if lang not in LANGS:
        raise ConfigError(f"--lang {lang!r} is not supported: choose zh (Chinese regulated "
                          "verse) or en (English verse)")
    return lang


def theme_vector(theme: str) -> np.ndarray:
    """The theme's MiniLM embedding [384], unit norm (one vector for all three parts)."""
    from muselab.models.text_encoder import embed_texts

    return np.asarray(embed_texts([theme])[0], dtype=np.float32)


def zh_title(theme: str, vec: np.ndarray) -> tuple[str, dict[str, float]]:
    """A Chinese title for the theme, and the score of each chosen character.

    Each content word of the theme (in its order, at most :data:`ZH_TITLE_CHARS`) picks the
    character whose gloss is nearest to the mean of the word's and the theme's vectors;
    a theme without content words takes the characters nearest to the theme vector.
    """
    from muselab.models.text_encoder import embed_texts

    hanzi = "".join(ch for ch in theme if "\u4e00" <= ch <= "\u9fff")
    if hanzi:
        return hanzi[:12], {}
    chars = list(ZH_IMAGERY)
    glosses = embed_texts([ZH_IMAGERY[c] for c in chars])  # [C, 384]
    words = content_words(theme)[:ZH_TITLE_CHARS]
    queries = (0.5 * (embed_texts(words) + vec) if words else vec[None])  # [W, 384]
    scores = queries @ glosses.T  # [W, C]
    picked: dict[str, float] = {}
    for row in scores:
        for i in np.argsort(-row):
            if chars[i] not in picked:
                picked[chars[int(i)]] = round(float(row[i]), 4)
                break
    if not words:
        for i in np.argsort(-scores[0])[1:ZH_TITLE_CHARS]:
            if scores[0, i] >= ZH_MIN_COS:
                picked[chars[int(i)]] = round(float(scores[0, i]), 4)
    return "".join(picked), picked


def content_words(theme: str) -> list[str]:
    """Lower-case words of ``theme`` without function words."""
    return [w for w in re.findall(r"[a-z']+", theme.lower()) if w not in _STOP]


def en_openings(theme: str, vec: np.ndarray) -> list[str]:
    """Openings to try in order: the theme, then its content words nearest the vector."""
    from muselab.models.text_encoder import embed_texts

    words = content_words(theme)
    if not words:
        return [theme.lower()]
    sims = embed_texts(words) @ vec  # [W]
    ranked = [words[i] for i in np.argsort(-sims)]
    return [theme.lower(), *ranked]


def write_poem(theme: str, lang: str, vec: np.ndarray, seed: int, model: str | None,
               device: str) -> tuple[str, dict[str, Any]]:
    """The poem text and its record."""
    if lang == "zh":
        from muselab.poetry.service import write_poems

        title, picked = zh_title(theme, vec)
        poem = write_poems(lang="zh", theme=title, seed=seed, model=model, device=device)[0]
        return f"《{title}》\n{poem.text}", {**poem.record(), "title_from_embedding": picked}
    from muselab.poetry.english import EnPoet

    poet = EnPoet.load(model, device)
    tried = []
    for opening in en_openings(theme, vec):
        try:
            poem = poet.write("couplets", seed=seed, theme=opening)[0]
        except ConfigError as exc:
            tried.append(str(exc))
            continue
        return poem.text, {**poem.record(), "opening": opening, "rejected": tried}
    poem = poet.write("couplets", seed=seed)[0]  # documented fallback: no opening words
    return poem.text, {**poem.record(), "opening": "", "rejected": tried}


def text_pipeline(model: str, device: str, runs_dir: Path | None) -> Any:
    """The text-to-image pipeline ``model`` (zoo name, run or file), or a ConfigError."""
    from muselab.image.diffusion_pipeline import DiffusionPipeline
    from muselab.models.zoo import load_pipeline

    pipe = load_pipeline(model, device=device, runs_dir=runs_dir)
    if not isinstance(pipe, DiffusionPipeline) or not pipe.is_text:
        raise ConfigError(f"--image-model {model!r} is not a text-to-image model "
                          "(train one with recipes/emoji-text32.sh)")
    return pipe


def make_image(pipe: Any, theme: str, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
    """uint8 [R, R, 3] from the text-to-image pipeline, and its provenance."""
    img = pipe.text2img(theme, [seed])[0]
    return img, pipe.provenance(prompt=theme, seed=seed)


def make_triptych(theme: str, out: Path, *, lang: str = "en", seed: int = 0,
                  image_model: str = DEFAULT_IMAGE_MODEL, poem_model: str | None = None,
                  music_model: str | None = None, bars: int = 8, candidates: int = 4,
                  device: str = "auto", runs_dir: Path | None = None,
                  progress: bool = False) -> TriptychResult:
    """Write the triptych folder ``out`` and ``out``.zip (see the module docstring)."""
    from muselab.crossmodal.image2music import compose_from_conditions, conditions_from_text
    from muselab.data.imagefolder import make_progress
    from muselab.image.io import save_png

    check_lang(lang)
    if not theme.strip():
        raise ConfigError("THEME is empty: give a few words, e.g. 'autumn rain at night'")
    pipe = text_pipeline(image_model, device, runs_dir)  # fail before writing anything
    ensure_dir(out)
    with make_progress(progress) as bar:
        task = bar.add_task("triptych: poem", total=4)
        vec = theme_vector(theme)
        emb = {"model": "all-MiniLM-L6-v2", "dim": len(vec),
               "sha256": hashlib.sha256(vec.tobytes()).hexdigest()}
        poem, poem_rec = write_poem(theme, lang, vec, seed, poem_model, device)
        with atomic_open(out / "poem.txt", "w") as fh:
            fh.write(poem + "\n")
        bar.update(task, advance=1, description="triptych: image")
        img, img_rec = make_image(pipe, theme, seed)
        save_png(out / "image.png", img, {**img_rec, "theme": theme})
        bar.update(task, advance=1, description="triptych: music")
        music = compose_from_conditions(conditions_from_text(theme), bars=bars, seed=seed,
                                        out=out / "music", model=music_model,
                                        candidates=candidates)
        bar.update(task, advance=1, description="triptych: bundle")
        parts = [_part("poem", out / "poem.txt", seed, poem_rec.get("model", ""), poem_rec),
                 _part("image", out / "image.png", seed, str(img_rec.get("run", "")), img_rec),
                 _part("music", out / "music.mid", seed, str(music["meta"]["model"]),
                       music["meta"], extra=music["files"])]
        manifest = {"kind": "triptych", "theme": theme, "lang": lang, "seed": seed,
                    "theme_embedding": emb, "parts": parts, "muselab_version": __version__}
        write_json(out / "manifest.json", manifest)
        with atomic_open(out / "index.html", "w") as fh:
            fh.write(_page(theme, poem, manifest, music["files"]))
        bar.update(task, advance=1, description="triptych: done")
    return TriptychResult(out, write_zip(out), manifest)


def _part(name: str, path: Path, seed: int, model: str, details: dict[str, Any],
          extra: dict[str, str] | None = None) -> dict[str, Any]:
    """One manifest entry: the part's main file and every file it wrote, with sha256."""
    files = {path.name: sha256_file(path)}
    for p in (extra or {}).values():
        if Path(p).is_file():
            files[Path(p).name] = sha256_file(p)
    return {"part": name, "file": path.name, "sha256": files[path.name], "files": files,
            "seed": seed, "model": model, "details": details}


def write_zip(folder: Path) -> Path:
    """``folder``.zip of every file in ``folder`` (fixed timestamps: same input, same zip)."""
    target = folder.with_suffix(".zip")

    def write(tmp: str) -> None:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            for f in sorted(p for p in folder.iterdir() if p.is_file()):
                info = zipfile.ZipInfo(f"{folder.name}/{f.name}", (1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(info, f.read_bytes())

    atomic_write(target, write)
    return target


def _page(theme: str, poem: str, manifest: dict[str, Any], music: dict[str, str]) -> str:
    e = html.escape
    audio = (f'<audio controls src="{e(Path(music["wav"]).name)}"></audio>'
             if "wav" in music else f"<p>{e(music.get('wav_note', 'no audio'))}</p>")
    cond = manifest["parts"][2]["details"]["conditions"]
    rows = "".join(f"<tr><td>{e(p['part'])}</td><td>{e(p['file'])}</td><td>{e(p['model'])}"
                   f"</td><td><code>{p['sha256'][:16]}</code></td></tr>"
                   for p in manifest["parts"])
    return _PAGE.format(
        theme=e(theme), poem=e(poem), audio=audio, key=e(str(cond["key"])),
        tempo=f"{cond['tempo']:.0f}", rows=rows, lang=e(manifest["lang"]),
        seed=manifest["seed"], emb=manifest["theme_embedding"]["sha256"][:16])


_PAGE = """<!doctype html>
<html lang="{lang}"><meta charset="utf-8"><title>{theme}: a muselab triptych</title>
<style>
body {{ font-family: sans-serif; margin: 2em auto; max-width: 64em; }}
.t {{ display: flex; gap: 2em; align-items: flex-start; }}
.t > section {{ flex: 1; }}
pre {{ font-size: 1.1em; white-space: pre-wrap; }}
img.px {{ image-rendering: pixelated; width: 256px; height: 256px; }}
img.roll {{ max-width: 100%; }}
</style>
<h1>{theme}</h1>
<div class="t">
<section><h2>Poem</h2><pre>{poem}</pre></section>
<section><h2>Image</h2><img class="px" src="image.png" alt="{theme}"></section>
<section><h2>Music</h2><img class="roll" src="music.png" alt="piano roll">
{audio}<p>{key}, {tempo} BPM &middot; <a href="music.mid">MIDI</a></p></section>
</div>
<h2>Provenance</h2>
<p>Language {lang}, seed {seed}; one theme embedding (MiniLM, sha256 <code>{emb}</code>)
conditions all three parts. Full record: <a href="manifest.json">manifest.json</a>.</p>
<table><tr><th>part</th><th>file</th><th>model</th><th>sha256</th></tr>{rows}</table>
</html>
"""
