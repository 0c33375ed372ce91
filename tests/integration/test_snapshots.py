"""Dataset versions (genaug.data.snapshots) from real image files, in a folder and in the
test stack's S3 server."""

import hashlib
import io
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from genaug.data import snapshots
from genaug.data.commands import main as data_main
from genaug.data.snapshots import SnapshotError
from genaug.services.names import DATASETS_BUCKET
from genaug.services.store import Store
from tests.images import CLASSES, image, make_folder

@pytest.fixture
def store(stack):
    return Store()


@pytest.fixture
def name(request):
    """A dataset name of this test's own (the stack lives for the whole session)."""
    return "t" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:12]


def test_a_folder_becomes_a_version_and_an_unchanged_one_writes_nothing(tmp_path, store, name):
    folder = make_folder(tmp_path / "src", salt=1)
    first = snapshots.snapshot(name, str(folder), store, label="first")
    assert first["created"] and first["n_images"] == 3 * 40 and first["new_objects"] == 3 * 40
    assert all(first["counts"][s][c] >= 1 for s in ("train", "val", "test") for c in CLASSES)
    manifest, meta = snapshots.load_manifest(name, first["version"], store)
    assert manifest["classes"] == list(CLASSES) and snapshots.manifest_id(manifest) == first["version"]
    assert [e["path"] for e in manifest["entries"]] == sorted(e["path"] for e in manifest["entries"])
    assert {e["mode"] for e in manifest["entries"]} >= {"L", "RGB", "RGBA", "P", "I;16"}
    # Mixed formats at 40x30: 32x32 by the policy, and RGB because some images are in colour.
    assert manifest["geometry"]["size"] == 32 and manifest["geometry"]["channels"] == 3
    before = store.listing(DATASETS_BUCKET, f"registry/{name}/")
    again = snapshots.snapshot(name, str(folder), store)
    assert again["version"] == first["version"] and not again["created"] and again["new_objects"] == 0
    assert store.listing(DATASETS_BUCKET, f"registry/{name}/") == before  # nothing written
    assert snapshots.resolve_version(name, "first", store) == snapshots.resolve_version(name, "latest", store)
    assert snapshots.resolve_version(name, first["version"][:10], store) == first["version"]


def test_adding_removing_and_relabelling_images_moves_no_image_to_another_split(tmp_path, store, name):
    folder = make_folder(tmp_path / "src", salt=2)
    old = snapshots.snapshot(name, str(folder), store)
    make_folder(folder, per_class=20, start=40, salt=2)       # new images
    (folder / "nut" / "0003.png").unlink()                    # one removed
    shutil.move(folder / "bolt" / "0000.png", folder / "washer" / "0000-was-bolt.png")  # one relabelled
    new = snapshots.snapshot(name, str(folder), store)
    assert new["created"] and new["version"] != old["version"] and new["new_objects"] == 60
    a, _ = snapshots.load_manifest(name, old["version"], store)
    b, _ = snapshots.load_manifest(name, new["version"], store)
    split_a = {e["sha256"]: e["split"] for e in a["entries"]}
    assert all(split_a[e["sha256"]] == e["split"] for e in b["entries"] if e["sha256"] in split_a)
    changes = snapshots.diff(a, b)
    assert len(changes["added"]) == 60 and changes["removed"] == ["nut/0003.png"]
    assert changes["relabelled"] == ["washer/0000-was-bolt.png: bolt -> washer"]
    shown = snapshots.show(name, "latest", store)
    assert shown["previous"] == old["version"] and shown["changes"] == changes


def test_split_folders_are_respected(tmp_path, store, name):
    for split, n in (("train", 30), ("test", 10)):
        make_folder(tmp_path / "src" / split, per_class=n, start=0 if split == "train" else 100)
    report = snapshots.snapshot(name, str(tmp_path / "src"), store)
    manifest, _ = snapshots.load_manifest(name, report["version"], store)
    assert {e["split"] for e in manifest["entries"] if e["path"].startswith("test/")} == {"test"}
    # No val/ folder: val comes out of train/ by content, never out of test/.
    assert {e["split"] for e in manifest["entries"] if e["path"].startswith("train/")} == {"train", "val"}


def test_an_s3_prefix_gives_the_same_version_as_the_same_folder(tmp_path, store, name, stack, monkeypatch):
    folder = make_folder(tmp_path / "src", per_class=40)
    for path in sorted(folder.rglob("*.*")):
        store.put_file(DATASETS_BUCKET, f"incoming/{name}/{path.relative_to(folder).as_posix()}", path)
    from_s3 = snapshots.snapshot(name, f"s3://{DATASETS_BUCKET}/incoming/{name}", store)
    from_folder = snapshots.snapshot(name + "-f", str(folder), store)
    assert from_s3["version"] == from_folder["version"] and from_s3["source"].endswith(f"incoming/{name}/")
    with pytest.raises(SnapshotError, match="holds no objects"):
        snapshots.snapshot(name, f"s3://{DATASETS_BUCKET}/incoming/nothing-here/", store)
    # Another endpoint's identity, with a wrong secret: named, and nothing written.
    monkeypatch.setenv("GENAUG_SOURCE_S3_ENDPOINT", stack.s3_endpoint)
    monkeypatch.setenv("GENAUG_SOURCE_S3_ACCESS_KEY", stack.keys("admin").access_key)
    monkeypatch.setenv("GENAUG_SOURCE_S3_SECRET_KEY", "wrong")
    with pytest.raises(Exception, match=stack.s3_endpoint):
        snapshots.snapshot(name + "-x", f"s3://{DATASETS_BUCKET}/incoming/{name}", store)
    assert not store.listing(DATASETS_BUCKET, f"registry/{name}-x/")


def _bad_folder(tmp_path, **extra):
    folder = make_folder(tmp_path / "src", per_class=40)
    for rel, data in extra.items():
        path = folder / rel.replace("__", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return folder


def _png_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize("case,message", [
    ("truncated", "nut/broken.png: corrupt or truncated image"),
    ("not_an_image", "nut/notes.txt"),
    ("renamed_text", "nut/fake.png: not an image PIL can read"),
    ("bomb", "nut/huge.png: 8000x8000 pixels is above the limit"),
    ("empty_class", "empty folder(s) under"),
    ("one_class", "holds 1 class (bolt)"),
    ("escaping_link", "lead outside"),
    ("loose_file", "not directly in a class/ folder"),
    ("conflict", "appear under two classes"),
    ("bad_name", "dataset name 'Bad Name' must be"),
])
def test_bad_input_is_named_and_leaves_no_version(tmp_path, store, name, case, message):
    good = _png_bytes(image(1, "L"))
    if case == "truncated":
        folder = _bad_folder(tmp_path, **{"nut__broken.png": good[: len(good) // 2]})
    elif case == "not_an_image":
        folder = _bad_folder(tmp_path, **{"nut__notes.txt": b"hello"})
    elif case == "renamed_text":
        folder = _bad_folder(tmp_path, **{"nut__fake.png": b"this is text"})
    elif case == "bomb":
        folder = _bad_folder(tmp_path, **{"nut__huge.png": _png_bytes(Image.new("L", (8000, 8000)))})
    elif case == "empty_class":
        folder = make_folder(tmp_path / "src", per_class=40)
        (folder / "gears").mkdir()
    elif case == "one_class":
        folder = make_folder(tmp_path / "src", per_class=40, classes=("bolt",))
    elif case == "escaping_link":
        folder = make_folder(tmp_path / "src", per_class=40)
        (tmp_path / "outside.png").write_bytes(good)
        os.symlink(tmp_path / "outside.png", folder / "nut" / "link.png")
    elif case == "loose_file":
        folder = _bad_folder(tmp_path, **{"stray.png": good})
    elif case == "conflict":
        folder = make_folder(tmp_path / "src", per_class=40)
        shutil.copy(folder / "bolt" / "0001.jpg", folder / "nut" / "copy.jpg")
    else:
        folder, name = make_folder(tmp_path / "src", per_class=40), "Bad Name"
    with pytest.raises(SnapshotError, match=message.replace("(", r"\(").replace(")", r"\)")):
        snapshots.snapshot(name, str(folder), store)
    assert not store.listing(DATASETS_BUCKET, f"registry/{name}/")


def test_skip_and_drop_record_what_they_left_out(tmp_path, store, name):
    good = _png_bytes(image(1, "L"))
    folder = _bad_folder(tmp_path, **{"nut__broken.png": good[:100], "nut__notes.txt": b"hello"})
    shutil.copy(folder / "bolt" / "0001.jpg", folder / "nut" / "copy.jpg")
    shutil.copy(folder / "bolt" / "0002.webp", folder / "bolt" / "again.webp")  # an exact duplicate
    report = snapshots.snapshot(name, str(folder), store, on_bad="skip", on_conflict="drop")
    assert [s.split(":")[0] for s in report["skipped"]] == ["nut/broken.png", "nut/notes.txt"]
    assert len(report["conflicts_dropped"]) == 1 and "bolt/0001.jpg" in report["conflicts_dropped"][0]
    assert report["duplicates"] == ["bolt/again.webp"]
    # The conflicting image left both classes; the duplicate counts once.
    assert report["n_images"] == 3 * 40 - 1
    _, meta = snapshots.load_manifest(name, report["version"], store)
    assert meta["skipped"] == report["skipped"] and meta["duplicates"] == ["bolt/again.webp"]


def test_the_cli_snapshots_lists_shows_and_diffs(tmp_path, stack, name, capsys):
    folder = make_folder(tmp_path / "src", per_class=40)
    assert data_main(["snapshot", name, str(folder), "--label", "v1"]) == 0
    first = capsys.readouterr().out.strip()
    make_folder(folder, per_class=5, start=40)
    assert data_main(["snapshot", name, str(folder)]) == 0
    second = capsys.readouterr().out.strip()
    assert first != second and len(second) == 64
    assert data_main(["list"]) == 0 and name in capsys.readouterr().out
    assert data_main(["show", f"{name}@v1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == first
    assert data_main(["diff", name, "v1", "latest"]) == 0
    assert "added: 15" in capsys.readouterr().out
    assert data_main(["show", f"{name}@nope"]) == 2
    assert "has no version 'nope'" in capsys.readouterr().err
    assert data_main(["show", "never-made"]) == 2
    assert "no dataset 'never-made'" in capsys.readouterr().err


def test_a_version_decodes_into_uint8_tensors_once_then_comes_from_the_cache(tmp_path, store, name):
    from genaug.data.decoded import cache_key, load_version
    from genaug.data.imagefile import Geometry

    folder = make_folder(tmp_path / "src", salt=42)  # its own images: one is damaged below
    report = snapshots.snapshot(name, str(folder), store)
    arrays, meta = load_version(name, report["version"], store)
    assert meta["decoded_cache"] == "miss" and meta["classes"] == list(CLASSES)
    for split in ("train", "val", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        assert x.dtype == np.uint8 and x.shape[1:] == (3, 32, 32) and len(x) == len(y) == \
            sum(report["counts"][split].values())
        assert x.std() > 0
    again, meta = load_version(name, report["version"], store)
    assert meta["decoded_cache"] == "hit" and all(np.array_equal(again[k], arrays[k]) for k in arrays)
    # A damaged cache is found by its hash, decoded again and replaced.
    key = cache_key(name, report["version"], Geometry(32, 3, True))
    store.put_bytes(DATASETS_BUCKET, key, b"not an npz")
    repaired, meta = load_version(name, report["version"], store)
    assert meta["decoded_cache"] == "miss" and all(np.array_equal(repaired[k], arrays[k]) for k in arrays)
    # A stored image that no longer matches its hash is refused, naming the file; nothing is cached.
    entry = snapshots.load_manifest(name, report["version"], store)[0]["entries"][0]
    store.delete(DATASETS_BUCKET, key)
    store.put_bytes(DATASETS_BUCKET, snapshots.object_key(entry["sha256"]), b"swapped bytes")
    with pytest.raises(Exception, match=f"{entry['path']}: .*is corrupt.*snapshot the source again"):
        load_version(name, report["version"], store)
    assert not store.exists(DATASETS_BUCKET, key)


def test_grey_images_of_a_kept_size_stay_as_they_are(tmp_path, store, name):
    from genaug.data.decoded import load_version

    for k, label in enumerate(("zero", "one")):
        (tmp_path / "src" / label).mkdir(parents=True)
        for i in range(40):
            Image.fromarray(np.full((28, 28), 100 * k + i, np.uint8)).save(tmp_path / "src" / label / f"{i}.png")
    report = snapshots.snapshot(name, str(tmp_path / "src"), store)
    manifest, _ = snapshots.load_manifest(name, report["version"], store)
    assert manifest["geometry"] == {**manifest["geometry"], "size": 28, "channels": 1, "resized": False}
    arrays, _ = load_version(name, report["version"], store)
    assert arrays["x_train"].shape[1:] == (1, 28, 28)
    assert {int(v) for v in np.unique(arrays["x_train"][arrays["y_train"] == manifest["classes"].index("one")])} <= set(range(100, 140))


def test_concurrent_snapshots_of_one_dataset_commit_one_after_the_other(tmp_path, store, name):
    """Two snapshots of one dataset at once (two scheduled runs): each commits under the
    dataset's lock, so the second records the first as its previous version."""
    from concurrent.futures import ThreadPoolExecutor

    folders = [make_folder(tmp_path / f"src{i}", salt=30 + i) for i in range(2)]
    with ThreadPoolExecutor(2) as pool:
        reports = list(pool.map(lambda f: snapshots.snapshot(name, str(f), store), folders))
    previous = {r["version"]: snapshots.load_manifest(name, r["version"], store)[1]["previous"] for r in reports}
    latest = snapshots.resolve_version(name, "latest", store)
    (first,) = set(previous) - {latest}
    assert previous == {first: None, latest: first}


def test_a_version_is_its_own_fid_reference(tmp_path, store, name):
    """What the experiment's fid_reference step and evaluate_generator measure a generator of a
    user dataset against: the version's own training split."""
    from genaug.data.decoded import reference_data
    from genaug.sections import MetricsConfig
    from genaug.steps.fid_reference import fid_reference

    report = snapshots.snapshot(name, str(make_folder(tmp_path / "src", salt=40)), store)
    spec, raw = reference_data(name, "latest", store)
    assert spec.classes == CLASSES and spec.shape == (3, 32, 32)
    assert len(raw.train_y) == sum(report["counts"]["train"].values())
    out = fid_reference(name, metrics=MetricsConfig(fid_samples=30, fid_network="stand-in"))
    assert out["keys"]["clean"].startswith(f"fid-reference/{name}-32px/train/n30/clean/")  # the side it was read at
    assert store.exists(DATASETS_BUCKET, out["keys"]["clean"]) and not out["cached"]["clean"]
    assert fid_reference(name, version=report["version"], metrics=MetricsConfig(fid_samples=30,
                                                                               fid_network="stand-in"))["cached"]


def test_file_names_in_any_script_are_kept(tmp_path, store, name):
    folder = make_folder(tmp_path / "src", salt=41)
    (folder / "bolt" / "0000.png").rename(folder / "bolt" / "schraube-ü-螺栓.png")
    report = snapshots.snapshot(name, str(folder), store)
    manifest, _ = snapshots.load_manifest(name, report["version"], store)
    assert "bolt/schraube-ü-螺栓.png" in {e["path"] for e in manifest["entries"]}


def test_a_version_too_large_for_memory_is_refused_before_decoding(tmp_path, store, name, monkeypatch):
    from genaug.data import memory
    from genaug.data.decoded import load_version

    report = snapshots.snapshot(name, str(make_folder(tmp_path / "src", salt=43)), store)
    monkeypatch.setattr(memory, "available_memory", lambda: 100_000)  # 40 KB for the dataset: 120 images do not fit
    with pytest.raises(memory.MemoryLimitError, match=f"dataset {name}@{report['version'][:12]}: 120 images of 3x32x32"):
        load_version(name, report["version"], store)
    assert not [k for k in store.list(DATASETS_BUCKET, f"registry/{name}/") if "decoded-" in k]
