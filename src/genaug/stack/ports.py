"""Choose the stack's loopback ports.

Ports are sticky per state folder: a server keeps the port it last used (ports.json), so
MLFLOW_TRACKING_URI and the other endpoints survive ``down`` + ``up``. For each port:

1. a server that is still running keeps its recorded port;
2. ``GENAUG_<NAME>_PORT`` if set;
3. the recorded port, if it is free;
4. with ``--free-ports``, a port the kernel picks; otherwise the default.

A port that is wanted but taken is an error naming the variable that moves it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path
from typing import Iterable, Mapping

from genaug.atomic import atomic_path
from genaug.stack.config import HOST, PORT_SPECS, PORTS
from genaug.stack.errors import StackError


def port_is_free(port: int, host: str = HOST) -> bool:
    """True if a server could bind ``host:port`` now (SO_REUSEADDR, as servers set it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def pick_free_ports(count: int, host: str = HOST, avoid: Iterable[int] = ()) -> list[int]:
    """``count`` distinct ports the kernel reports free on ``host``.

    All sockets stay bound until every port is chosen, so the picks differ from each
    other; another program may still take one before the server binds it (rare, and the
    server's start then fails with a clear 'address in use').
    """
    avoid = set(avoid)
    ports: list[int] = []
    with contextlib.ExitStack() as stack:
        while len(ports) < count:
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            port = sock.getsockname()[1]
            if port not in avoid and port not in ports:
                ports.append(port)
    return ports


def free_port(host: str = HOST) -> int:
    """One port the kernel reports free on ``host`` now (see ``pick_free_ports``)."""
    return pick_free_ports(1, host)[0]


def load_recorded(path: Path) -> dict[str, int]:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return {name: int(port) for name, port in data.items() if name in PORT_SPECS}


def save(path: Path, ports: Mapping[str, int]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(dict(ports), indent=1) + "\n")


def _env_port(name: str) -> int | None:
    spec = PORT_SPECS[name]
    raw = os.environ.get(spec.env)
    if raw is None or raw == "":
        return None
    try:
        port = int(raw)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise StackError(f"{spec.env}={raw!r} is not a port; give a number in 1..65535 or unset it")
    return port


def _taken(name: str, port: int, source: str) -> StackError:
    spec = PORT_SPECS[name]
    moves = (f"set {spec.env} to a free port or unset it" if source.startswith("from ")
             else f"set {spec.env} to a free port, or run `up --free-ports`")
    return StackError(f"port {port} for the {spec.purpose} ({source}) on {HOST} is in use by another "
                      f"program; stop that program, or {moves}")


def resolve(recorded: Mapping[str, int], keep: Iterable[str], free_ports: bool) -> dict[str, int]:
    """Ports for every name in ``config.PORTS``; ``keep`` = names whose server still runs."""
    keep = set(keep)
    chosen: dict[str, int] = {}
    need_free: list[str] = []
    for spec in PORTS:
        name = spec.name
        if name in keep and name in recorded:
            chosen[name] = recorded[name]
            continue
        env_port = _env_port(name)
        if env_port is not None:
            if not port_is_free(env_port):
                raise _taken(name, env_port, f"from {spec.env}")
            chosen[name] = env_port
        elif name in recorded and port_is_free(recorded[name]):
            chosen[name] = recorded[name]
        elif free_ports:
            need_free.append(name)
        elif name in recorded:
            raise _taken(name, recorded[name], "used by this stack before, see ports.json")
        elif port_is_free(spec.default):
            chosen[name] = spec.default
        else:
            raise _taken(name, spec.default, "the default")
    for name, port in zip(need_free, pick_free_ports(len(need_free), avoid=chosen.values())):
        chosen[name] = port
    duplicates = {port for port in chosen.values() if list(chosen.values()).count(port) > 1}
    if duplicates:
        names = sorted(n for n, p in chosen.items() if p in duplicates)
        raise StackError(f"ports {sorted(duplicates)} are assigned twice ({', '.join(names)}); "
                         "give each GENAUG_*_PORT a different value")
    return chosen
