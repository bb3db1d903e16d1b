"""Inspiration from an artist's own images: analysis, neighbours, variations, a mood board.

For every image in a folder:

* **palette**: k-means (Lloyd 1982, k-means++ seeding, Arthur & Vassilvitskii 2007) on the
  pixels in CIELab, where Euclidean distance approximates perceived colour difference
  (CIE 1976); each swatch with its share of the pixels;
* **composition**: the rule of thirds (the share of edge energy near the third lines over
  the share expected from their area: > 1 means the structure sits on the thirds; Liu et
  al. 2010 use the same grid), left-right and top-bottom mirror symmetry, edge density
  (:func:`muselab.crossmodal.features.image_features`) and the balance (distance of the
  centre of visual mass, edge energy, from the centre: 0 centred, 1 in a corner);
* **style vector**: channel means and standard deviations of the style layers of a
  MobileNetV2 (Sandler et al. 2018), the statistics AdaIN (Huang & Belongie 2017)
  treats as style, each layer L2-normalised, the whole unit length;
* **nearest training neighbours**: cosine nearest neighbours of that vector in the image
  model's training set (the emoji);
* **variations**: the work encoded by the VAE (q(z|x), Kingma & Welling 2014) and decoded
  from latents drawn around the posterior mean;
* **style remix**: the work restyled with another work (or its nearest neighbour) by the
  arbitrary stylizer (Ghiasi et al. 2017, :mod:`muselab.style.arbitrary`);
* **surprise me**: many samples of the model, kept when far from every training image
  (novelty 1 - max cosine above the median) and ranked by the value model
  (:mod:`muselab.evaluate.value`; without ratings its aesthetic prior).

All of it lands on one mood board PNG (works, palette swatches, neighbours, variations,
remixes, surprises) with the full record in its metadata and in ``inspire.json``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from muselab import __version__
from muselab.config import check_range
from muselab.errors import ConfigError, DataError, MuselabError
from muselab.io import ensure_dir, write_json

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")
MAX_WORKS = 32
MAX_BOARD_COLS = 8
#: Side (px) at which style vectors are computed, for works and training images alike.
STYLE_SIDE = 64
#: Width of a third-line band as a share of the side (each side of the line).
THIRDS_BAND = 1 / 24


@dataclass
class InspireConfig:
    """What to make (every field checked)."""

    colours: int = 5  # palette size
    neighbours: int = 4  # nearest training images per work
    variations: int = 4  # VAE variations per work
    spread: float = 0.7  # std of the variation latents around the posterior mean
    surprise: int = 4  # surprise works kept
    candidates: int = 48  # samples the surprises are chosen from
    temperature: float = 1.25  # latent scale of the candidates (> 1: further out)
    remix: bool = True  # style remixes with the arbitrary stylizer
    model: str = "emoji-vae32"  # the image model (a VAE)
    backbone: str = "mobilenet-v2"  # for style vectors
    training_limit: int | None = None  # first N training images only (tests, speed)
    seed: int = 0
    thumb: int = 96  # mood board tile side

    def __post_init__(self) -> None:
        check_range("colours", self.colours, 1, 16)
        check_range("neighbours", self.neighbours, 1, 16)
        check_range("variations", self.variations, 0, 16)
        check_range("spread", self.spread, 0.0, 4.0)
        check_range("surprise", self.surprise, 0, 32)
        check_range("candidates", self.candidates, max(1, self.surprise), 1024)
        check_range("temperature", self.temperature, 0.1, 4.0)
        check_range("thumb", self.thumb, 32, 512)


@dataclass
class Swatch:
    rgb: tuple[int, int, int]
    lab: tuple[float, float, float]
    share: float

    @property
    def hex(self) -> str:
        return "#{:02x}{:02x}{:02x}".format(*self.rgb)


@dataclass
class WorkAnalysis:
    """Everything measured on one work."""

    file: str
    size: tuple[int, int]  # (height, width)
    palette: list[Swatch]
    composition: dict[str, float]
    features: dict[str, Any]
    neighbours: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["palette"] = [{**asdict(s), "hex": s.hex} for s in self.palette]
        return d


# --------------------------------------------------------------------------- loading


def load_works(folder: Path) -> list[tuple[str, np.ndarray]]:
    """(file name, uint8 [H, W, 3]) for each image in ``folder`` (not recursive, sorted)."""
    from PIL import Image, UnidentifiedImageError

    from muselab.crossmodal.features import as_rgb

    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder of images")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    if len(files) > MAX_WORKS:
        raise DataError(f"{folder} holds {len(files)} images; give at most {MAX_WORKS}")
    works = []
    for path in files:
        try:
            with Image.open(path) as im:
                im.thumbnail((512, 512))
                arr = np.asarray(im.convert("RGBA"))
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            raise DataError(f"{path} is not a readable image ({exc})") from None
        works.append((path.name, as_rgb(arr, str(path))))
    return works


def square(img: np.ndarray, side: int) -> np.ndarray:
    """The whole image padded to a square with white, resized to ``side`` (Lanczos)."""
    from PIL import Image

    h, w = img.shape[:2]
    s = max(h, w)
    canvas = np.full((s, s, 3), 255, np.uint8)
    canvas[(s - h) // 2 : (s - h) // 2 + h, (s - w) // 2 : (s - w) // 2 + w] = img
    return np.asarray(Image.fromarray(canvas).resize((side, side), Image.Resampling.LANCZOS))


# --------------------------------------------------------------------------- analysis


def palette(img: np.ndarray, k: int, seed: int = 0, max_pixels: int = 4096) -> list[Swatch]:
    """``k`` (or fewer, for images with fewer colours) dominant colours by k-means in Lab."""
    from skimage.color import lab2rgb, rgb2lab
    from sklearn.cluster import KMeans

    px = img.reshape(-1, 3)  # [P, 3]
    if len(px) > max_pixels:
        px = px[np.random.default_rng(seed).choice(len(px), max_pixels, replace=False)]
    lab = rgb2lab(px[None].astype(np.float64) / 255.0)[0]  # [P, 3]
    k = min(k, len(np.unique(px, axis=0)))
    km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(lab)
    share = np.bincount(km.labels_, minlength=k) / len(lab)  # [k]
    rgb = np.clip(lab2rgb(km.cluster_centers_[None])[0] * 255.0 + 0.5, 0, 255)  # [k, 3]
    order = np.argsort(-share)
    return [Swatch(tuple(int(c) for c in rgb[i]),  # type: ignore[arg-type]
                   tuple(round(float(c), 2) for c in km.cluster_centers_[i]),  # type: ignore[arg-type]
                   round(float(share[i]), 4)) for i in order]


def composition(img: np.ndarray) -> dict[str, float]:
    """Rule of thirds, symmetry (both mirrors), edge density and balance (see the module)."""
    from skimage.color import rgb2gray
    from skimage.filters import sobel

    from muselab.crossmodal.features import image_features

    f = image_features(img)
    g = rgb2gray(img)  # [H, W] in [0, 1]
    h, w = g.shape
    sym_tb = float(1.0 - np.abs(g - g[::-1]).mean())
    energy = sobel(g) if min(h, w) >= 3 else np.zeros_like(g)  # [H, W]
    total = float(energy.sum())
    if total <= 1e-9:  # documented fallback: no structure, no thirds, centred
        return {"thirds": 0.0, "symmetry_lr": f.symmetry, "symmetry_tb": sym_tb,
                "edge_density": f.edge_density, "balance": 0.0}
    ys, xs = (np.arange(h) + 0.5) / h, (np.arange(w) + 0.5) / w
    near_y = np.min(np.abs(ys[:, None] - np.array([1 / 3, 2 / 3])), axis=1) < THIRDS_BAND
    near_x = np.min(np.abs(xs[:, None] - np.array([1 / 3, 2 / 3])), axis=1) < THIRDS_BAND
    band = near_y[:, None] | near_x[None, :]  # [H, W]
    thirds = float(energy[band].sum() / total) / max(float(band.mean()), 1e-9)
    cy, cx = float((energy.sum(1) * ys).sum() / total), float((energy.sum(0) * xs).sum() / total)
    balance = float(np.hypot(cy - 0.5, cx - 0.5) / np.hypot(0.5, 0.5))
    return {"thirds": round(thirds, 4), "symmetry_lr": round(f.symmetry, 4),
            "symmetry_tb": round(sym_tb, 4), "edge_density": round(f.edge_density, 4),
            "balance": round(balance, 4)}


class StyleEncoder:
    """Style vectors (see the module docstring); a feature extractor for ``cached_extract``."""

    def __init__(self, backbone: str = "mobilenet-v2", device: str = "cpu") -> None:
        from muselab.models.backbones import load_backbone

        self.net = load_backbone(backbone, device=device)
        self.name = f"style-{backbone}"
        self.layers = list(self.net.info.style_layers)
        with torch.no_grad():
            probe = self.net(torch.zeros(1, 3, STYLE_SIDE, STYLE_SIDE), self.layers)
        self.dim = int(sum(2 * v.shape[1] for v in probe.values()))

    def fingerprint(self) -> str:
        return f"{self.name}-{STYLE_SIDE}-{'.'.join(self.layers)}-v1"

    @torch.no_grad()
    def __call__(self, images: np.ndarray) -> np.ndarray:
        """uint8 [N, S, S, 3] (S = STYLE_SIDE) -> float32 [N, dim], unit norm."""
        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255
        acts = self.net(x, self.layers)  # {layer: [N, C, h, w]}
        parts = []
        for a in acts.values():
            stats = torch.cat([a.mean(dim=(2, 3)), a.std(dim=(2, 3))], dim=1)  # [N, 2C]
            parts.append(torch.nn.functional.normalize(stats, dim=1))
        v = torch.nn.functional.normalize(torch.cat(parts, dim=1), dim=1)  # [N, dim]
        return v.numpy().astype(np.float32)


def training_set(limit: int | None) -> tuple[np.ndarray, list[str]]:
    """The emoji the shipped image models learned from: uint8 [N, 32, 32, 3] and names."""
    from muselab.data import load_images

    data = load_images("emoji", 32, limit=limit, progress=False)
    names = list(data.captions) if data.captions else [Path(f).stem for f in data.files]
    return data.images, names


def style_vectors(enc: StyleEncoder, images: np.ndarray, cached: bool = False) -> np.ndarray:
    """Style vectors of uint8 [N, H, W, 3] images (squared to STYLE_SIDE first)."""
    from muselab.evaluate.features import cached_extract, extract

    sq = np.stack([square(i, STYLE_SIDE) for i in images])  # [N, S, S, 3]
    return (cached_extract(enc, sq, what="training set style") if cached  # type: ignore[arg-type]
            else extract(enc, sq))  # type: ignore[arg-type]


def centred(v: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Rows of ``v`` [N, D] minus the training mean ``mean`` [D], unit length again.

    Raw style statistics are all positive, so every cosine is near 1; centred on the
    training set, cosines spread over [-1, 1] and the neighbours mean something.
    """
    c = v - mean
    return (c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def nearest(queries: np.ndarray, bank: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices [Q, k] and cosine similarities [Q, k] of the nearest rows of ``bank``
    (both already :func:`centred`)."""
    sims = queries @ bank.T  # [Q, N] (unit vectors)
    idx = np.argsort(-sims, axis=1)[:, :k]
    return idx, np.take_along_axis(sims, idx, axis=1)


# --------------------------------------------------------------------------- generation


def vae_of(pipe: Any) -> Any:
    """The VAE inside an image pipeline, or a ConfigError."""
    vae = getattr(pipe.task, "vae", None)
    if vae is None or not hasattr(vae, "encode"):
        raise ConfigError(f"--model {pipe.run_name}: variations need a VAE (e.g. emoji-vae32)")
    return vae


@torch.no_grad()
def variations(pipe: Any, works: list[np.ndarray], n: int, spread: float,
               seed: int) -> np.ndarray:
    """uint8 [W, n, R, R, 3]: decodes of z = mu(work) + spread * eps."""
    vae = vae_of(pipe)
    r = int(vae.cfg.resolution)
    x = torch.from_numpy(np.stack([square(w, r) for w in works])).permute(0, 3, 1, 2)
    mu, _ = vae.encode(x.float().to(pipe.task.device) / 127.5 - 1.0)  # [W, L]
    g = torch.Generator().manual_seed(seed)
    eps = torch.randn(len(works), n, mu.shape[1], generator=g)  # [W, n, L]
    z = mu.cpu()[:, None] + spread * eps  # [W, n, L]
    imgs = pipe.decode(z.reshape(-1, mu.shape[1]))  # [W*n, R, R, 3]
    return imgs.reshape(len(works), n, *imgs.shape[1:])


def surprises(pipe: Any, enc: StyleEncoder, bank: np.ndarray, mean: np.ndarray,
              cfg: InspireConfig, value_dir: Path | None) -> list[dict[str, Any]]:
    """Candidates far from the training set (``bank``, centred on ``mean``), best first by
    the value model."""
    from muselab.evaluate.value import ValueConfig, ValueModel

    g = torch.Generator().manual_seed(cfg.seed + 1)
    z = pipe.task.sample_z(cfg.candidates, g) * cfg.temperature  # [C, L]
    imgs = pipe.decode(z)  # [C, R, R, 3]
    query = centred(style_vectors(enc, imgs), mean)  # [C, D]
    novelty = 1.0 - nearest(query, bank, 1)[1][:, 0]  # [C]
    model = (ValueModel.load(value_dir) if value_dir is not None
             else ValueModel(ValueConfig(backbone="none")))
    value = model.predict(list(imgs)).score  # [C]
    far = np.flatnonzero(novelty >= np.median(novelty))
    best = far[np.argsort(-value[far])][: cfg.surprise]
    return [{"image": imgs[i], "candidate": int(i), "novelty": round(float(novelty[i]), 4),
             "value": round(float(value[i]), 4)} for i in best]


def remixes(works: list[np.ndarray], partners: list[np.ndarray],
            ) -> tuple[list[np.ndarray], str]:
    """Each work restyled by its partner with the arbitrary stylizer; a note if impossible."""
    from muselab.style.arbitrary import ArbitraryOptions, ArbitraryStylizer

    try:
        st = ArbitraryStylizer(threads=1)
    except (MuselabError, ImportError) as exc:
        return [], f"no style remix: {exc}"
    opt = ArbitraryOptions(max_side=256)
    return [st.stylize(square(w, 128), [square(p, 128)], options=opt)
            for w, p in zip(works, partners, strict=True)], ""


# --------------------------------------------------------------------------- the board


def swatch_tile(pal: list[Swatch], side: int) -> np.ndarray:
    """Vertical bars, each as wide as its colour's share: uint8 [side, side, 3]."""
    tile = np.zeros((side, side, 3), np.uint8)
    edges = np.round(np.cumsum([0.0] + [s.share for s in pal]) / sum(s.share for s in pal)
                     * side).astype(int)
    for s, a, b in zip(pal, edges[:-1], edges[1:], strict=True):
        tile[:, a:b] = s.rgb
    return tile


def mood_board(rows: list[tuple[str, list[np.ndarray]]], thumb: int, cols: int = 8,
               ) -> np.ndarray:
    """uint8 board: each row a caption over up to ``cols`` tiles of ``thumb`` px."""
    from PIL import Image, ImageDraw

    pad, label = 8, 18
    rows = [(t, tiles[:cols]) for t, tiles in rows if tiles]
    width = pad + cols * (thumb + pad)
    height = pad + len(rows) * (label + thumb + pad)
    board = Image.new("RGB", (width, height), (250, 248, 244))
    draw = ImageDraw.Draw(board)
    y = pad
    for title, tiles in rows:
        draw.text((pad, y + 3), title, fill=(40, 40, 40))
        for j, tile in enumerate(tiles):
            img = Image.fromarray(square(tile, thumb))
            board.paste(img, (pad + j * (thumb + pad), y + label))
        y += label + thumb + pad
    return np.asarray(board)


# --------------------------------------------------------------------------- all of it


@dataclass
class InspireResult:
    board: Path
    report: dict[str, Any]
    files: dict[str, list[str]]


def inspire(folder: Path, out: Path, cfg: InspireConfig | None = None, *,
            value_dir: Path | None = None, device: str = "auto", progress: bool = True,
            runs_dir: Path | None = None) -> InspireResult:
    """Analyse the works in ``folder`` and write the mood board and its parts to ``out``."""
    from muselab.data.imagefolder import make_progress
    from muselab.image.io import save_png
    from muselab.models.zoo import load_pipeline

    cfg = cfg or InspireConfig()
    works = load_works(folder)  # bad input fails before anything loads
    ensure_dir(out)
    with make_progress(progress) as bar:
        task = bar.add_task("inspire", total=6)
        step = (lambda what: bar.update(task, advance=1, description=what))  # noqa: E731
        analyses = [WorkAnalysis(name, (int(img.shape[0]), int(img.shape[1])),
                                 palette(img, cfg.colours, cfg.seed), composition(img),
                                 _features(img)) for name, img in works]
        step("style vectors")
        enc = StyleEncoder(cfg.backbone)
        train, names = training_set(cfg.training_limit)
        raw = style_vectors(enc, train, cached=True)  # [N, D]
        mean = raw.mean(axis=0)  # [D]
        bank = centred(raw, mean)
        mine = style_vectors(enc, np.stack([square(w, STYLE_SIDE) for _, w in works]))
        idx, sims = nearest(centred(mine, mean), bank, cfg.neighbours)
        for a, row, srow, vec in zip(analyses, idx, sims, mine, strict=True):
            a.neighbours = [{"index": int(i), "name": names[i], "similarity": round(float(s), 4)}
                            for i, s in zip(row, srow, strict=True)]
            a.features["style_vector_head"] = [round(float(v), 4) for v in vec[:8]]
        step("variations")
        pipe = load_pipeline(cfg.model, device=device, runs_dir=runs_dir)
        imgs = [w for _, w in works]
        var = (variations(pipe, imgs, cfg.variations, cfg.spread, cfg.seed) if cfg.variations
               else np.zeros((len(works), 0)))
        step("surprise me")
        surprise = surprises(pipe, enc, bank, mean, cfg, value_dir) if cfg.surprise else []
        step("style remix")
        partners = ([imgs[(i + 1) % len(imgs)] for i in range(len(imgs))] if len(imgs) > 1
                    else [train[int(idx[0, 0])]])
        mixed, note = remixes(imgs, partners) if cfg.remix else ([], "remix off")
        step("mood board")
        files = _save_parts(out, var, surprise, mixed)
        rows = [("your works", imgs),  # the next rows: one tile per work, in its column
                ("palettes (k-means in CIELab)", [swatch_tile(a.palette, 64) for a in analyses]),
                ("nearest training emoji (style vector)",
                 [train[a.neighbours[0]["index"]] for a in analyses]),
                ("variations (VAE, around each work)", [row[0] for row in var if len(row)]),
                ("style remix (restyled by the next work, arbitrary stylizer)", mixed),
                ("surprise me (far from the training set, high value)",
                 [s["image"] for s in surprise])]
        report = {"kind": "inspire", "folder": str(folder), "config": asdict(cfg),
                  "works": [a.as_dict() for a in analyses], "remix_note": note,
                  "surprise": [{k: v for k, v in s.items() if k != "image"} for s in surprise],
                  **pipe.provenance(), "style_backbone": cfg.backbone,
                  "value_model": str(value_dir) if value_dir else "aesthetic prior",
                  "muselab_version": __version__, "files": files}
        board = out / "moodboard.png"
        cols = max(min(len(imgs), MAX_BOARD_COLS), len(surprise))
        save_png(board, mood_board(rows, cfg.thumb, cols), report)
        write_json(out / "inspire.json", report)
        step("done")
    return InspireResult(board, report, files)


def _features(img: np.ndarray) -> dict[str, Any]:
    from muselab.crossmodal.features import image_features

    return image_features(img).as_dict()


def _save_parts(out: Path, var: np.ndarray, surprise: list[dict[str, Any]],
                mixed: list[np.ndarray]) -> dict[str, list[str]]:
    """Each generated image as its own PNG (for the gallery); the paths by group."""
    files: dict[str, list[str]] = {"variations": [], "surprise": [], "remix": []}
    for i, row in enumerate(var):
        for j, img in enumerate(row):
            files["variations"].append(_save(out / f"variation-{i:02d}-{j:02d}.png", img))
    for i, s in enumerate(surprise):
        files["surprise"].append(_save(out / f"surprise-{i:02d}.png", s["image"],
                                       {"novelty": s["novelty"], "value": s["value"]}))
    for i, img in enumerate(mixed):
        files["remix"].append(_save(out / f"remix-{i:02d}.png", img))
    return files


def _save(path: Path, img: np.ndarray, meta: dict[str, Any] | None = None) -> str:
    from muselab.image.io import save_png

    save_png(path, img, {"kind": "inspire", **(meta or {})})
    return str(path)
