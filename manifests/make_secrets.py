"""Write the git-ignored env files that the manifests' secretGenerators read, and check
that the values shared between files agree.

    python3 manifests/make_secrets.py [--root manifests]      (or: make secrets)

Every ``secrets/*.env.example`` under the root gets its ``.env`` next to it, unless that
exists already (nothing is ever overwritten). Names (``*_ACCESS_KEY``, ``*_USER``,
``*_USERNAME``, ``POSTGRES_DB``) are the example's; secret values are 32 random letters and
digits, safe in a PostgreSQL URL. For a bring-your-own S3 store, ``BYO_S3_ACCESS_KEY`` and
``BYO_S3_SECRET_KEY`` in the environment set every client's pair (pipeline, MLflow, Triton)
to the store's keys (the backup's too). Nothing else is taken from the environment: a shell that holds the
local stack's keys must not leak them into a cluster.

Some keys must hold the same value in two files (the pipeline's S3 pair, the Triton admin
key): they are drawn once, and the check fails, naming both files, if files written by
hand disagree.
"""

from __future__ import annotations

import argparse
import os
import secrets
import string
import sys
from pathlib import Path

# Keys that are one value under two names (in different files).
SAME = [("GENAUG_PIPELINE_ACCESS_KEY", "GENAUG_S3_ACCESS_KEY"),
        ("GENAUG_PIPELINE_SECRET_KEY", "GENAUG_S3_SECRET_KEY")]
BYO = {"ACCESS": ["GENAUG_PIPELINE_ACCESS_KEY", "GENAUG_PROMOTE_ACCESS_KEY", "GENAUG_MLFLOW_ACCESS_KEY",
                  "GENAUG_TRITON_ACCESS_KEY", "GENAUG_BACKUP_ACCESS_KEY"],
       "SECRET": ["GENAUG_PIPELINE_SECRET_KEY", "GENAUG_PROMOTE_SECRET_KEY", "GENAUG_MLFLOW_SECRET_KEY",
                  "GENAUG_TRITON_SECRET_KEY", "GENAUG_BACKUP_SECRET_KEY"]}
_NAMES = ("_ACCESS_KEY", "_USER", "_USERNAME", "_DB")


def canonical(key: str) -> str:
    for first, second in SAME:
        if key == second:
            return first
    return key


def read_env(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def drawn_values(env=os.environ) -> dict[str, str]:
    """Values fixed before any file is written: the BYO pairs."""
    fixed = {}
    for part, keys in BYO.items():
        if env.get(f"BYO_S3_{part}_KEY"):
            fixed.update({k: env[f"BYO_S3_{part}_KEY"] for k in keys})
    return fixed


def value_for(key: str, example: str, chosen: dict[str, str]) -> str:
    name = canonical(key)
    if name not in chosen:
        chosen[name] = example if key.endswith(_NAMES) else \
            "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
    return chosen[name]


def write_missing(root: Path, chosen: dict[str, str]) -> list[str]:
    """Write each missing .env (mode 0600) and return their paths."""
    # Values already in existing files are reused, so a new file agrees with the old ones.
    for path in sorted(root.rglob("secrets/*.env")):
        for key, value in read_env(path).items():
            chosen.setdefault(canonical(key), value)
    written = []
    for example in sorted(root.rglob("secrets/*.env.example")):
        target = example.with_suffix("")
        if target.exists():
            continue
        lines = []
        for line in example.read_text().splitlines():
            key, sep, value = line.partition("=")
            if line.strip() and not line.lstrip().startswith("#") and sep:
                line = f"{key.strip()}={value_for(key.strip(), value.strip(), chosen)}"
            lines.append(line)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        written.append(str(target))
    return written


def disagreements(root: Path) -> list[str]:
    """Shared keys whose values differ between env files, as messages naming the files."""
    seen: dict[str, tuple[str, Path]] = {}
    problems = []
    for path in sorted(root.rglob("secrets/*.env")):
        for key, value in read_env(path).items():
            name = canonical(key)
            if name in seen and seen[name][0] != value:
                problems.append(f"{key} in {path} differs from {name} in {seen[name][1]}; make them equal")
            seen.setdefault(name, (value, path))
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=str(Path(__file__).resolve().parent))
    root = Path(parser.parse_args(argv).root)
    for path in write_missing(root, drawn_values()):
        print(f"wrote {path}")
    problems = disagreements(root)
    for problem in problems:
        print(f"make_secrets: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
