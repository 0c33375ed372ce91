"""The hash lock (requirements.lock, written by `make lock`): read it, check it against
pyproject.toml, and cut an image's share of it.

    python lockfile.py check LOCK --pyproject FILE       what disagrees with pyproject's pins
    python lockfile.py pins LOCK NAME...                 NAME==VERSION as locked, on one line
    python lockfile.py share LOCK --pyproject FILE [--extras a,b] [--provided torch,torchvision]
                                                         an image's requirements, with hashes

An image's share is what pyproject's dependencies and the image's EXTRAS need, less the
packages the image already holds at the locked version (``--provided``: torch and torchvision,
from the base image or TORCH_INDEX) and less PyPI torch's CUDA wheels (triton, nvidia-*,
cuda-*): the torch an image holds brings its own CUDA, or none. pip installs the share with
--require-hashes, so everything it fetches is checked; what it finds installed it leaves.

Standard library only: it runs in the image builds before the project is installed.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable

# The CUDA wheels that PyPI's torch (and only it) pulls in.
CUDA_STACK = re.compile(r"triton|nvidia-.+|cuda-.+")
# How uv names the project in a "# via" annotation.
PROJECT_PARENT = re.compile(r"\(pyproject\.toml\)$")
ENTRY = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")
HASH = re.compile(r"--hash=(sha256:[0-9a-f]{64})")


class LockError(Exception):
    """The lock, pyproject.toml or this environment do not fit together; the message says how."""


def normalize(name: str) -> str:
    """A distribution name as the indexes compare it (PEP 503): ``Flask_WTF`` -> ``flask-wtf``."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Locked:
    """One package of the lock: its version, the sha256 of each file the index serves for it,
    and the packages that need it (from uv's "# via" annotations)."""
    name: str
    version: str
    hashes: tuple[str, ...]
    parents: frozenset[str]
    direct: bool  # pyproject.toml names it

    def requirement(self) -> str:
        """As pip reads it: ``name==version --hash=sha256:... ...`` on one line."""
        return f"{self.name}=={self.version} " + " ".join(f"--hash={h}" for h in self.hashes)


@dataclass(frozen=True)
class Lock:
    """The packages of a lock by normalized name, and the Python it was resolved for."""
    packages: dict[str, Locked]
    python: str | None  # the Python it was resolved for (the header's --python-version)


def read(path: Path) -> Lock:
    """Parse a lock in the format of ``uv pip compile --generate-hashes`` (annotated)."""
    text = path.read_text()
    found: dict[str, dict] = {}
    current = None
    for line in text.splitlines():
        stripped = line.strip()
        if line and not line[0].isspace() and not line.startswith("#"):
            match = ENTRY.match(line)
            if not match:
                raise LockError(f"{path}: cannot read {line!r}; expected NAME==VERSION (make lock writes it)")
            current = found.setdefault(normalize(match[1]), {"version": match[2], "hashes": [], "parents": []})
        elif current is not None and stripped.startswith("#"):
            via = stripped.lstrip("#").strip().removeprefix("via").strip()
            if via:
                current["parents"].append(via)
        if current is not None:
            current["hashes"] += HASH.findall(line)
    packages = {}
    for name, entry in found.items():
        direct = any(PROJECT_PARENT.search(p) for p in entry["parents"])
        parents = frozenset(normalize(p.split("[")[0]) for p in entry["parents"] if not PROJECT_PARENT.search(p))
        packages[name] = Locked(name, entry["version"], tuple(entry["hashes"]), parents, direct)
    python = re.search(r"--python-version[ =](\S+)", text)
    return Lock(packages, python[1] if python else None)


def pins(pyproject: Path, extras: list[str] | None = None) -> dict[str, str]:
    """{name: version} of pyproject's dependencies and the given extras (None: every extra).
    A requirement not pinned with == maps to "" (the check reports it)."""
    project = tomllib.loads(pyproject.read_text())["project"]
    optional = project.get("optional-dependencies", {})
    unknown = sorted(set(extras or ()) - optional.keys())
    if unknown:
        raise LockError(f"unknown extra {', '.join(unknown)}; pyproject.toml has {', '.join(sorted(optional))}")
    requirements = list(project.get("dependencies", []))
    for extra in optional if extras is None else extras:
        requirements += optional[extra]
    pinned = {}
    for requirement in requirements:
        match = ENTRY.fullmatch(requirement.strip())
        name = normalize(re.split(r"[\[=<>~!; ]", requirement.strip(), maxsplit=1)[0])
        pinned[name] = match[2] if match else ""
    return pinned


def disagreements(lock: Lock, pyproject: Path) -> list[str]:
    """What keeps the lock from being pyproject's: each line names the package and the fix."""
    problems = []
    wanted = pins(pyproject)
    for name, version in sorted(wanted.items()):
        locked = lock.packages.get(name)
        if not version:
            problems.append(f"{name}: pyproject.toml does not pin it with ==; pin it, then make lock")
        elif locked is None:
            problems.append(f"{name}=={version}: in pyproject.toml, missing from the lock; run make lock")
        elif locked.version != version:
            problems.append(f"{name}: pyproject.toml pins {version}, the lock has {locked.version}; run make lock")
    for name, locked in sorted(lock.packages.items()):
        if not locked.hashes:
            problems.append(f"{name}=={locked.version}: no hash in the lock; run make lock (it writes them)")
        if locked.direct and name not in wanted:
            problems.append(f"{name}: the lock has it from pyproject.toml, which no longer names it; run make lock")
    return problems


def share(lock: Lock, roots: set[str], provided: set[str] = frozenset()) -> list[Locked]:
    """The locked packages that ``roots`` need, less ``provided`` and the CUDA stack, in name order.

    The walk goes through the provided packages (the torch an image holds still needs
    sympy, filelock...) but not through the CUDA stack. Raises if a package that stays needs
    a CUDA wheel: the image would then lack it.
    """
    missing = sorted(roots - lock.packages.keys())
    if missing:
        raise LockError(f"{', '.join(missing)} not in the lock; run make lock")
    children: dict[str, set[str]] = {}
    for package in lock.packages.values():
        for parent in package.parents:
            children.setdefault(parent, set()).add(package.name)
    keep, dropped, todo = set(), set(), list(roots)
    while todo:
        name = todo.pop()
        if name in keep or name in dropped:
            continue
        if CUDA_STACK.fullmatch(name):
            dropped.add(name)
            continue
        keep.add(name)
        todo += children.get(name, ())
    for name in sorted(dropped):
        needers = set(lock.packages[name].parents & keep) - provided
        if name in roots:
            needers.add("pyproject.toml")
        if needers:
            raise LockError(f"{', '.join(sorted(needers))} needs {name}, a CUDA wheel of PyPI's torch that the images "
                            "leave out; give the image that package another way, or stop leaving it out "
                            "(images/lockfile.py CUDA_STACK)")
    return [lock.packages[name] for name in sorted(keep - provided)]


def environment_problems(lock: Lock, provided: set[str], installed: Callable[[str], str | None],
                         python: str) -> list[str]:
    """Why this environment cannot take a share: another Python than the lock's, or a provided
    package missing or at another version (a local label such as +cpu is the same version)."""
    problems = []
    if lock.python and lock.python != python:
        problems.append(f"the lock is for Python {lock.python} and this is Python {python} ({sys.executable}); "
                        "build on a base image with that Python, or lock for this one (make lock)")
    for name in sorted(provided):
        want = lock.packages[name].version if name in lock.packages else None
        have = installed(name)
        if want is None:
            problems.append(f"{name} is not in the lock; run make lock")
        elif have is None:
            problems.append(f"{name} is not installed; the base image or TORCH_INDEX provides {name}=={want}")
        elif have.split("+")[0] != want:
            problems.append(f"{name} {have} is installed, the lock has {want}; use a base image (or "
                            f"TORCH_INDEX) with {name} {want}")
    return problems


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _names(text: str) -> set[str]:
    return {normalize(n) for n in text.split(",") if n.strip()}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lockfile.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="what disagrees between the lock and pyproject.toml")
    pinned = commands.add_parser("pins", help="NAME==VERSION as locked")
    cut = commands.add_parser("share", help="an image's requirements, with hashes, for pip --require-hashes")
    for command in (check, pinned, cut):
        command.add_argument("lock", type=Path)
    for command in (check, cut):
        command.add_argument("--pyproject", type=Path, required=True)
    pinned.add_argument("names", nargs="+")
    cut.add_argument("--extras", default="", help="comma-separated extras of pyproject.toml")
    cut.add_argument("--provided", default="", help="comma-separated packages the image already holds")
    args = parser.parse_args(argv)
    try:
        lock = read(args.lock)
        if args.command == "check":
            problems = disagreements(lock, args.pyproject)
            for problem in problems:
                print(f"lockfile: {problem}", file=sys.stderr)
            return 1 if problems else 0
        if args.command == "pins":
            missing = sorted(_names(",".join(args.names)) - lock.packages.keys())
            if missing:
                raise LockError(f"{', '.join(missing)} not in {args.lock}")
            print(" ".join(f"{n}=={lock.packages[n].version}" for n in map(normalize, args.names)))
            return 0
        provided = _names(args.provided)
        python = f"{sys.version_info.major}.{sys.version_info.minor}"
        problems = environment_problems(lock, provided, _installed, python)
        if problems:
            raise LockError("; ".join(problems))
        extras = sorted({e.strip() for e in args.extras.split(",") if e.strip()})
        roots = set(pins(args.pyproject, extras))
        print("\n".join(p.requirement() for p in share(lock, roots, provided)))
        return 0
    except LockError as err:
        print(f"lockfile: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
