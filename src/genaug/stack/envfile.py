"""KEY=VALUE files that a shell can source (``set -a; . .genaug/stack.env``) and make can include."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from genaug.atomic import atomic_path


def write_env(path: Path, values: Mapping[str, str], header: str) -> None:
    """Replace ``path`` atomically with mode 0600 (the values include secrets)."""
    lines = [f"# {line}" for line in header.splitlines()]
    for key, value in values.items():
        if any(c in str(value) for c in " \t\n'\"$`\\"):
            raise ValueError(f"{key}={value!r} would need shell quoting; env files here hold plain values")
        lines.append(f"{key}={value}")
    with atomic_path(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("\n".join(lines) + "\n")

