"""``genaug infer``: call the served models over Triton gRPC.

    genaug infer generator --model fashion_mnist-dcgan-generator --labels 0,1,2 --out grid.png
    genaug infer classifier --model fashion_mnist-classifier shirt.png boot.png
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genaug.services.triton import Triton


def served_shape(triton: Triton, model: str, tensor: str) -> list[int]:
    """Dims of an input or output without the batch dimension, from the served config."""
    cfg = triton.config(model)
    for t in cfg.get("input", []) + cfg.get("output", []):
        if t["name"] == tensor:
            return [int(d) for d in t["dims"]]
    raise KeyError(f"{model} has no tensor {tensor!r}; is it a genaug model?")


def class_names(triton: Triton, model: str) -> list[str]:
    value = triton.config(model).get("parameters", {}).get("class_names", {}).get("string_value", "")
    return value.split(",") if value else []


def tile(images: np.ndarray, columns: int = 10, scale: int = 3) -> np.ndarray:
    """uint8 [N, C, H, W] -> one uint8 [rows*H*scale, cols*W*scale, C] picture, 2 px gaps."""
    n, c, h, w = images.shape
    columns = min(columns, n)
    rows = -(-n // columns)
    gap = 2
    canvas = np.zeros((rows * (h + gap) + gap, columns * (w + gap) + gap, c), dtype=np.uint8)
    for i, img in enumerate(images):
        r, k = divmod(i, columns)
        canvas[gap + r * (h + gap):gap + r * (h + gap) + h, gap + k * (w + gap):gap + k * (w + gap) + w] = \
            img.transpose(1, 2, 0)
    return canvas.repeat(scale, 0).repeat(scale, 1)


# Height of the band under each image that holds its caption, in output pixels: PIL's
# default font, drawn 1 px down, reaches 13 px with its descenders.
CAPTION_PX = 14


def captioned(images: np.ndarray, captions: list[str], scale: int = 3) -> np.ndarray:
    """uint8 [N, C, H, W] -> uint8 [N, C, H*scale + CAPTION_PX, W*scale]: each image
    enlarged ``scale`` times, with its caption in white on black beneath it, shortened to fit."""
    from PIL import Image, ImageDraw

    n, c, h, w = images.shape
    big = images.repeat(scale, 2).repeat(scale, 3)
    bands = np.zeros((n, c, CAPTION_PX, w * scale), dtype=np.uint8)
    for band, text in zip(bands, captions):
        canvas = Image.new("L", (w * scale, CAPTION_PX))
        draw = ImageDraw.Draw(canvas)
        while text and draw.textlength(text) > w * scale - 2:
            text = text[:-1]
        draw.text((1, 1), text, fill=255)
        band[:] = np.asarray(canvas)
    return np.concatenate([big, bands], axis=2)


def generate(model: str, labels: list[int], out: str | Path, seed: int = 0, triton: Triton | None = None) -> Path:
    """Ask the served generator for one image per label; write them as a PNG grid, each
    image captioned with its class name (from the served config; the label number without one)."""
    from PIL import Image

    triton = triton or Triton()
    dims = served_shape(triton, model, "noise")
    noise = np.random.default_rng(seed).standard_normal((len(labels), *dims)).astype(np.float32)
    images = triton.generate(model, np.asarray(labels, dtype=np.int64), noise)
    names = class_names(triton, model)
    picture = tile(captioned(images, [names[k] if k < len(names) else str(k) for k in labels]), scale=1)
    out = Path(out)
    Image.fromarray(picture.squeeze(-1) if picture.shape[-1] == 1 else picture).save(out)
    return out


def top_classes(model: str, images: np.ndarray, top: int = 3, triton: Triton | None = None) -> list[list[tuple]]:
    """images uint8 [B, C, H, W], at the served model's shape -> per image its ``top``
    (class name, probability) pairs, most probable first; the probabilities are the softmax
    over all the model's classes. Names come from the served version's labels file."""
    triton = triton or Triton()
    images = np.asarray(images)
    shape = served_shape(triton, model, "images")
    if images.dtype != np.uint8 or images.ndim != 4 or list(images.shape[1:]) != shape:
        raise ValueError(f"{model} takes uint8 images [B, {', '.join(map(str, shape))}], not {images.dtype} "
                         f"{list(images.shape)}; `genaug infer classifier` resizes image files to it")
    count = served_shape(triton, model, "logits")[0]
    fallback = class_names(triton, model)  # a version served before labels files: the config's names
    results = []
    for ranked in triton.ranked_classes(model, images, count):
        logits = np.array([score for score, _, _ in ranked])
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        names = [name or (fallback[k] if k < len(fallback) else str(k)) for _, k, name in ranked]
        results.append(list(zip(names, probs.tolist()))[:top])
    return results


def classify(model: str, paths: list[str], top: int = 3, triton: Triton | None = None) -> list[dict]:
    """The ``top`` classes of each image file (resized and converted to the model's input),
    by name from the served version's labels file, with their probabilities."""
    from PIL import Image

    triton = triton or Triton()
    c, h, w = served_shape(triton, model, "images")
    batch = []
    for p in paths:
        img = Image.open(p).convert("L" if c == 1 else "RGB").resize((w, h))
        arr = np.asarray(img, dtype=np.uint8)
        batch.append(arr[None] if c == 1 else arr.transpose(2, 0, 1))
    return [{"file": p, "top": ranked} for p, ranked in zip(paths, top_classes(model, np.stack(batch), top, triton))]
