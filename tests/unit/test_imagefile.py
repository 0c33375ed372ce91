"""The geometry policy of user images (genaug.data.imagefile), on real encoded files."""

import io

import numpy as np
import pytest
from PIL import Image

from genaug.data.imagefile import BadImage, Geometry, ImageInfo, choose_geometry, decode, probe


def _encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def test_same_kept_size_stays_and_anything_else_becomes_32():
    grey28 = ImageInfo(28, 28, "L", False)
    assert choose_geometry([grey28, grey28]) == Geometry(28, 1, resized=False)
    assert choose_geometry([grey28, ImageInfo(32, 32, "RGB", True)]) == Geometry(32, 3, resized=True)
    assert choose_geometry([ImageInfo(64, 48, "L", False)] * 2) == Geometry(32, 1, resized=True)


def test_exif_orientation_is_applied_before_the_centre_crop():
    # A 40x20 image, left half black and right half white, stored rotated (orientation 6:
    # show it turned 90 degrees clockwise), so it is 20 wide and 40 high as seen.
    array = np.zeros((20, 40), np.uint8)
    array[:, 20:] = 255
    image = Image.fromarray(array)
    exif = image.getexif()
    exif[0x0112] = 6
    data = _encode(image.convert("RGB"), "JPEG", exif=exif, quality=95)
    assert (probe(data, "x.jpg").width, probe(data, "x.jpg").height) == (20, 40)
    out = decode(data, "x.jpg", Geometry(32, 1, True))[0]
    # Seen upright, the top half is black and the bottom half white; the centre crop keeps both.
    assert out[:12].mean() < 40 and out[-12:].mean() > 215


def test_transparency_palette_cmyk_and_16_bit_images_become_plain_uint8():
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, 16:, 3] = 255  # left half transparent: it becomes the white background
    out = decode(_encode(Image.fromarray(rgba, "RGBA")), "a.png", Geometry(32, 3, False))
    assert (out[:, :, :16] == 255).all() and (out[0, :, 16:] == 200).all() and (out[1, :, 16:] == 0).all()
    deep = Image.fromarray(np.full((32, 32), 0x8000, np.uint16))
    assert probe(_encode(deep), "d.png").colour is False
    assert (decode(_encode(deep), "d.png", Geometry(32, 1, False)) == 0x80).all()
    grey_palette = Image.fromarray(np.full((32, 32), 90, np.uint8)).convert("P")
    assert probe(_encode(grey_palette), "p.png").colour is False
    cmyk = Image.new("CMYK", (32, 32), (0, 255, 255, 0))  # red
    red = decode(_encode(cmyk, "JPEG"), "c.jpg", Geometry(32, 3, False))
    assert red[0].mean() > 200 and red[1].mean() < 60
    # A grey image in a colour dataset is replicated into three equal channels.
    grey = decode(_encode(Image.new("L", (32, 32), 77)), "g.png", Geometry(32, 3, False))
    assert grey.shape == (3, 32, 32) and (grey == 77).all()


@pytest.mark.parametrize("data,message", [
    (b"GIF89a not really", "not an image PIL can read|corrupt or truncated"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "not an image PIL can read|corrupt or truncated"),
])
def test_what_is_not_an_image_is_named(data, message):
    with pytest.raises(BadImage, match="bad.png: (" + message + ")"):
        probe(data, "bad.png")
