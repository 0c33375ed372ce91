"""Bake a file into an image at build time, or refuse: fetch it, check its sha256, install it
read-only, and record it in the folder's SHA256SUMS (which ``--verify`` checks again).

    python bake.py fetch SOURCE SHA256 DEST        SOURCE: https://..., http://... or a path
    python bake.py check FILE SHA256               a file installed some other way (a wheel's)
    python bake.py verify DIR                      every file listed in DIR/SHA256SUMS

SHA256 is the full hex digest, or ``prefix:<hex>`` for files that publish only the start
of theirs in the name (torchvision's ``resnet18-f37072fd.pth``). Standard library only: it
runs before the project is installed, in any Python 3.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import urllib.request
from pathlib import Path

SUMS = "SHA256SUMS"


def _fail(message: str) -> int:
    print(f"bake: {message}", file=sys.stderr)
    return 1


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _matches(actual: str, expected: str) -> bool:
    expected = expected.strip().lower()
    if expected.startswith("prefix:"):
        prefix = expected.removeprefix("prefix:")
        return len(prefix) >= 8 and actual.startswith(prefix)
    return actual == expected


def fetch(source: str, expected: str, dest: Path) -> int:
    if not expected.strip():
        return _fail(f"{source} has no checksum; pass its sha256 with the build arg next to the URL")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=dest.parent, delete=False) as tmp:
        part = Path(tmp.name)
    try:
        if source.startswith(("http://", "https://")):
            with urllib.request.urlopen(source, timeout=60) as response, open(part, "wb") as out:
                shutil.copyfileobj(response, out)
        elif Path(source).is_file():
            shutil.copyfile(source, part)
        else:
            return _fail(f"{source} is neither a URL nor a file in the build context")
        actual = _digest(part)
        if not _matches(actual, expected):
            return _fail(f"sha256 of {source} is {actual}, expected {expected}: a corrupt download or a "
                         "wrong build arg; nothing was installed")
        part.chmod(0o444)
        os.replace(part, dest)  # the final name appears only once the bytes are verified
    except OSError as err:
        return _fail(f"cannot fetch {source}: {err}")
    finally:
        part.unlink(missing_ok=True)
    with open(dest.parent / SUMS, "a") as sums:
        sums.write(f"{actual}  {dest.name}\n")
    print(f"bake: {dest} ({actual[:16]}...) verified")
    return 0


def check(path: Path, expected: str) -> int:
    if not path.is_file():
        return _fail(f"{path} does not exist")
    actual = _digest(path)
    if not _matches(actual, expected):
        return _fail(f"sha256 of {path} is {actual}, expected {expected}")
    print(f"bake: {path} ({actual[:16]}...) verified")
    return 0


def verify(folder: Path) -> int:
    sums = folder / SUMS
    if not sums.is_file():
        return 0  # nothing baked here
    bad = []
    for line in sums.read_text().splitlines():
        digest, _, name = line.partition("  ")
        path = folder / name
        if not path.is_file() or _digest(path) != digest:
            bad.append(name)
    if bad:
        return _fail(f"{folder}: {', '.join(bad)} missing or changed since it was baked")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 4 and argv[0] == "fetch":
        return fetch(argv[1], argv[2], Path(argv[3]))
    if len(argv) == 3 and argv[0] == "check":
        return check(Path(argv[1]), argv[2])
    if len(argv) == 2 and argv[0] == "verify":
        return verify(Path(argv[1]))
    return _fail("usage: bake.py fetch SOURCE SHA256 DEST | check FILE SHA256 | verify DIR")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
