"""genaug data export: a built-in dataset as the class folders a user would bring."""

import numpy as np
import pytest
from PIL import Image

from genaug import catalog
from genaug.data.commands import main as data_main
from genaug.data.export import ExportError, parse_cuts

SPEC = catalog.dataset("fashion_mnist")


def test_a_built_in_dataset_becomes_64px_rgb_jpeg_class_folders_with_a_class_cut(tiny_fmnist, tmp_path, capsys):
    out = tmp_path / "fmnist64"
    assert data_main(["export", "fashion_mnist", str(out), "--size", "64", "--colour", "--cut", "Shirt=0.1"]) == 0
    (train_x, train_y), (test_x, test_y) = tiny_fmnist["train"], tiny_fmnist["t10k"]
    files = {split: sorted((out / split).rglob("*.jpg")) for split in ("train", "test")}
    assert len(files["test"]) == len(test_y)  # the test split stays whole
    shirt = SPEC.classes.index("Shirt")
    n_shirt = int((train_y == shirt).sum())
    assert len(list((out / "train" / "Shirt").glob("*.jpg"))) == max(1, round(0.1 * n_shirt))
    assert len(files["train"]) == len(train_y) - n_shirt + max(1, round(0.1 * n_shirt))
    assert (out / "train" / "T-shirt-top").is_dir()  # '/' cannot be in a folder name
    image = Image.open(files["test"][0])
    assert image.format == "JPEG" and image.size == (64, 64) and image.mode == "RGB"
    # The file holds that test image, enlarged: the same picture at 28 px again.
    index = int(files["test"][0].stem)
    small = np.asarray(image.convert("L").resize((28, 28), Image.Resampling.LANCZOS), dtype=np.int16)
    assert np.abs(small - test_x[index]).mean() < 12
    assert "train:" in capsys.readouterr().err


def test_bad_export_arguments_name_the_fix(tiny_fmnist, tmp_path, capsys):
    with pytest.raises(ExportError, match="CLASS=SHARE with SHARE in"):
        parse_cuts(["Shirts=0.1"], SPEC)
    with pytest.raises(ExportError, match=r"e.g. --cut T-shirt-top=0.1"):
        parse_cuts(["Shirt=2"], SPEC)
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "old.jpg").write_bytes(b"x")
    assert data_main(["export", "fashion_mnist", str(tmp_path / "used")]) == 2
    assert "is not empty" in capsys.readouterr().err
