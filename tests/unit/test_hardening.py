"""Small defects that could lose data or run what a user never meant to run."""

import os
import subprocess
import threading

import pytest

from genaug.atomic import atomic_path
from tests.conftest import REPO


# -- atomic writes -------------------------------------------------------------------------
def test_two_threads_writing_one_file_never_collide(tmp_path):
    target, errors = tmp_path / "summary.json", []

    def writer(tag):
        for i in range(300):
            try:
                with atomic_path(target) as tmp:
                    tmp.write_text(f"{tag}{i:04d}" * 500)
            except Exception as err:  # noqa: BLE001 - any failure is the defect
                errors.append(repr(err))

    threads = [threading.Thread(target=writer, args=(tag,)) for tag in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    text = target.read_text()
    assert len(text) == 5 * 500 and text == text[:5] * 500  # one writer's whole content
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no temporary file left


def test_the_bytes_are_on_disk_before_the_rename(tmp_path, monkeypatch):
    events, real_fsync, real_replace = [], os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", str(src)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    with atomic_path(tmp_path / "model.pt") as tmp:
        tmp.write_bytes(b"weights")
    assert events[0] == ("fsync", str(tmp)) and events[1] == ("replace", str(tmp))
    assert events[2] == ("fsync", str(tmp_path))  # the folder entry too


# -- the Makefile passes user values as data -----------------------------------------------
HOSTILE = ["x;touch {m}", "$$(touch {m})", "`touch {m}`", "x\ntouch {m}", 'x";touch {m};"', "x' ; touch {m} ; '"]


@pytest.mark.parametrize("template", HOSTILE)
@pytest.mark.parametrize("target,variable", [
    ("validate", "DATASET"), ("validate", "DATA_VERSION"), ("validate-experiment", "RATIOS"),
    ("pipeline", "TARGET"), ("pipeline-kfp", "KFP_HOST"), ("manifests", "OVERLAY"),
])
def test_hostile_make_values_run_nothing(tmp_path, template, target, variable):
    marker = tmp_path / "ran"
    value = template.format(m=marker)
    env = {k: v for k, v in os.environ.items() if k not in ("DATASET", "TARGET", "KFP_HOST", "OVERLAY", "RATIOS")}
    out = subprocess.run(["make", "--no-print-directory", target, f"{variable}={value}",
                          "KFP_HOST=http://127.0.0.1:9" if variable != "KFP_HOST" else "WAIT=0"],
                         cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode != 0, out.stdout  # each value is refused with the usual error...
    assert not marker.exists(), f"`make {target} {variable}=...` ran a command:\n{out.stdout}\n{out.stderr}"
