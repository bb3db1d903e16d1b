"""Inputs of image-to-image work: the picture (or sketch) to edit and the inpainting mask."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from muselab.data.imagefolder import decode_image, try_decode
from muselab.errors import DataError


def load_input(path: str | Path, resolution: int) -> np.ndarray:
    """``path`` as uint8 [R, R, 3]: centre-cropped, resized, transparency on white."""
    result = try_decode(Path(path), resolution, "crop", (255, 255, 255))
    if isinstance(result, str):
        raise DataError(f"{path}: {result}")
    return result


def load_mask(path: str | Path, image: str | Path, resolution: int) -> np.ndarray:
    """bool [R, R]: True where the model repaints (white in the mask file).

    The mask must have the input image's size, so that it is cropped the same way.
    """
    sizes = []
    for p in (path, image):
        try:
            with Image.open(p) as img:
                sizes.append(img.size)
        except (OSError, ValueError) as exc:
            raise DataError(f"{p}: cannot read it as an image ({exc})") from exc
    if sizes[0] != sizes[1]:
        raise DataError(f"mask {path} is {sizes[0][0]}x{sizes[0][1]} but the image {image} is "
                        f"{sizes[1][0]}x{sizes[1][1]}: they must be the same size")
    grey = decode_image(path, resolution, "crop", (0, 0, 0)).mean(axis=2)  # [R, R]
    return grey > 127
