"""One image file: check it, describe it, and decode it into the dataset's geometry.

The geometry policy (one for every user dataset, recorded in its manifest):
- every image the same size, and that size 28x28 or 32x32: kept as it is;
- otherwise 32x32: EXIF orientation applied, centre crop to a square, antialiased
  (Lanczos) resize;
- channels: RGB if any image is in colour (grey images are replicated), grey if all are grey;
  transparency is composited on white; palette, CMYK and 16-bit images are converted
  (16-bit by keeping the high byte).
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
KEPT_SIZES = ((28, 28), (32, 32))
DEFAULT_SIZE = 32
BACKGROUND = (255, 255, 255)  # what transparent pixels become
# Above this many pixels an image is refused as a possible decompression bomb (PIL's own
# limit is ~89M and only warns below twice that).
MAX_PIXELS = 50_000_000
GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}


class BadImage(ValueError):
    """A file that is not a usable image; the message says why."""


@dataclass(frozen=True)
class ImageInfo:
    width: int    # pixels, after EXIF orientation
    height: int
    mode: str     # PIL's mode of the file
    colour: bool  # False when every pixel is grey by its mode (or a grey palette)


@dataclass(frozen=True)
class Geometry:
    """What every image of a version becomes: uint8 [channels, size, size]."""

    size: int
    channels: int
    resized: bool  # False when every image already had this size

    def as_dict(self) -> dict:
        return {"size": self.size, "channels": self.channels, "resized": self.resized,
                "policy": "exif-orientation, centre-crop-square, lanczos" if self.resized else "kept",
                "background": list(BACKGROUND)}


# A resize to S pixels first reduces by whole factors (box filter) down to REDUCING_GAP * S,
# then resamples with Lanczos: the result is within a grey level of Lanczos all the way, for a
# fraction of the work on large images (PIL's reducing_gap). A JPEG is decoded at the
# smallest DCT scale (1/2, 1/4, 1/8) that stays above the same size: the decoder's own
# reduction, without decoding pixels that are averaged away.
REDUCING_GAP = 3.0


def _open(data: bytes, name: str, shrink_to: int | None = None) -> Image.Image:
    """The decoded image; with ``shrink_to``, a JPEG may come at a DCT scale whose short side
    is still at least REDUCING_GAP * shrink_to pixels."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
            if image.width * image.height > MAX_PIXELS:
                raise BadImage(f"{name}: {image.width}x{image.height} pixels is above the limit of "
                               f"{MAX_PIXELS:,} (a decompression bomb?); shrink it or leave it out")
            keep = math.ceil(REDUCING_GAP * shrink_to) if shrink_to else 0
            if keep and image.format == "JPEG" and min(image.size) > keep:
                short = min(image.size)
                image.draft(image.mode, (-(-keep * image.width // short), -(-keep * image.height // short)))
            image.load()  # a truncated file fails here, not later in a training step
            return image
        except BadImage:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            raise BadImage(f"{name}: refused as a decompression bomb ({err})") from err
        except UnidentifiedImageError as err:
            raise BadImage(f"{name}: not an image PIL can read") from err
        except (OSError, SyntaxError, ValueError) as err:
            raise BadImage(f"{name}: corrupt or truncated image ({' '.join(str(err).split())})") from err


def _is_colour(image: Image.Image) -> bool:
    if image.mode in GREY_MODES:
        return False
    if image.mode == "P":
        palette = np.asarray(image.getpalette() or [], dtype=np.uint8).reshape(-1, 3)
        used = palette[np.unique(np.asarray(image))] if len(palette) else palette
        return bool(len(used) and not ((used[:, 0] == used[:, 1]) & (used[:, 1] == used[:, 2])).all())
    return True


def probe(data: bytes, name: str) -> ImageInfo:
    """Decode ``data`` fully (so that a corrupt file is found now) and describe it.
    Raises BadImage naming ``name``."""
    image = _open(data, name)
    width, height = image.size
    orientation = image.getexif().get(0x0112, 1)
    if orientation in (5, 6, 7, 8):  # rotated by 90 degrees: width and height swap
        width, height = height, width
    return ImageInfo(width, height, image.mode, _is_colour(image))


def choose_geometry(infos: list[ImageInfo]) -> Geometry:
    """The dataset's geometry under the policy in the module docstring."""
    sizes = {(i.width, i.height) for i in infos}
    channels = 3 if any(i.colour for i in infos) else 1
    if len(sizes) == 1 and next(iter(sizes)) in KEPT_SIZES:
        return Geometry(next(iter(sizes))[0], channels, resized=False)
    return Geometry(DEFAULT_SIZE, channels, resized=True)


def _eight_bit(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.uint32)
        return Image.fromarray((array >> 8).clip(0, 255).astype(np.uint8), "L")
    if image.mode == "F":
        return Image.fromarray(np.asarray(image).clip(0, 255).astype(np.uint8), "L")
    return image


def decode(data: bytes, name: str, geometry: Geometry) -> np.ndarray:
    """The image as uint8 [C, H, W] in ``geometry``."""
    image = ImageOps.exif_transpose(_eight_bit(_open(data, name, geometry.size if geometry.resized else None)))
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
        image = Image.alpha_composite(flat, rgba)
    image = image.convert("RGB" if geometry.channels == 3 else "L")
    if image.size != (geometry.size, geometry.size):
        side = min(image.size)
        image = ImageOps.fit(image, (side, side), method=Image.Resampling.NEAREST, centering=(0.5, 0.5))
        image = image.resize((geometry.size, geometry.size), Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)
    array = np.asarray(image, dtype=np.uint8)
    return array[None] if array.ndim == 2 else np.ascontiguousarray(array.transpose(2, 0, 1))


def decode_chunk(items: list[tuple[bytes, str]], geometry: Geometry) -> np.ndarray:
    """uint8 [len(items), C, S, S] of (bytes, name) pairs: one task of a decoding process."""
    out = np.empty((len(items), geometry.channels, geometry.size, geometry.size), dtype=np.uint8)
    for i, (data, name) in enumerate(items):
        out[i] = decode(data, name, geometry)
    return out
