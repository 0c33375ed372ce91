"""Start servers in their own process session, record them, and stop exactly those.

A pid file holds the PID and the kernel's start time of that PID (``/proc/<pid>/stat``
field 22, in clock ticks since boot). A PID is reused after its process dies; checking
the start time as well means ``down`` can never signal an unrelated process that
happens to have inherited a stale PID. Each server leads its own session, so its process
group (gid = PID) holds its children too (MLflow's uvicorn, Triton's python stubs) and
one ``killpg`` reaches all of them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping, Sequence

from genaug.atomic import atomic_path


@dataclass(frozen=True)
class Proc:
    """A process we started: its PID (= process group id) and its start time in ticks."""

    pid: int
    start_ticks: int


def _stat_fields(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/<pid>/stat (after the command name), or None if no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) is in parentheses and may itself contain spaces or ')'.
    return raw[raw.rindex(")") + 2:].split()


def _start_ticks(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[19])  # field 22 overall


def _reap(pid: int) -> None:
    """Collect an exited child of this process, so it stops showing up as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass  # not our child (the usual case: `up` ran in another process)


def is_alive(proc: Proc) -> bool:
    """True while the very process we started runs (zombies and reused PIDs count as dead)."""
    _reap(proc.pid)
    fields = _stat_fields(proc.pid)
    return fields is not None and fields[0] != "Z" and int(fields[19]) == proc.start_ticks


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) PIDs in process group ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and fields[0] != "Z" and int(fields[2]) == pgid:
                members.append(int(entry.name))
    return members


def spawn(name: str, argv: Sequence[str], env: Mapping[str, str], log: Path, pid_file: Path,
          cwd: Path, shown_argv: Sequence[str] | None = None) -> Proc:
    """Start ``argv`` detached in a new session, output appended to ``log``; record it.

    ``shown_argv`` is what the log header shows instead of ``argv`` (to keep keys out of logs).
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as handle:
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        handle.write(f"\n===== {stamp} starting {name}: {' '.join(shown_argv or argv)}\n".encode())
        handle.flush()
        child = subprocess.Popen(list(argv), env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL,
                                 stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
                                 close_fds=True)
    ticks = _start_ticks(child.pid)
    proc = Proc(child.pid, ticks if ticks is not None else -1)
    record(pid_file, proc)
    return proc


def record(pid_file: Path, proc: Proc) -> None:
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(pid_file) as tmp:
        tmp.write_text(json.dumps({"pid": proc.pid, "start_ticks": proc.start_ticks}) + "\n")


def recorded(pid_file: Path) -> Proc | None:
    """The process recorded in ``pid_file``, or None if there is no (readable) record."""
    try:
        data = json.loads(pid_file.read_text())
        return Proc(int(data["pid"]), int(data["start_ticks"]))
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def running(pid_file: Path) -> Proc | None:
    """The recorded process if it still runs, else None."""
    proc = recorded(pid_file)
    return proc if proc is not None and is_alive(proc) else None


def exit_code(proc: Proc) -> int | None:
    """The exit status if ``proc`` was our child and has exited; None otherwise."""
    try:
        done, status = os.waitpid(proc.pid, os.WNOHANG)
    except ChildProcessError:
        return None
    return os.waitstatus_to_exitcode(status) if done else None


def stop(pid_file: Path, timeout_s: float) -> str:
    """Stop the recorded process group: SIGTERM, then SIGKILL after ``timeout_s`` seconds.

    Returns what happened, for the CLI to print. The pid file is removed in every case.
    """
    proc = recorded(pid_file)
    if proc is None:
        pid_file.unlink(missing_ok=True)
        return "not running"
    if not is_alive(proc) and not _orphans(proc):
        pid_file.unlink(missing_ok=True)
        return f"not running (stale record of PID {proc.pid} removed)"
    how = _signal_group(proc, signal.SIGTERM, timeout_s)
    if how != "stopped":
        how = _signal_group(proc, signal.SIGKILL, 10.0)
        how = "killed after SIGTERM timed out" if how == "stopped" else f"PID {proc.pid} survived SIGKILL"
    pid_file.unlink(missing_ok=True)
    return f"{how} (PID {proc.pid})"


def _orphans(proc: Proc) -> list[int]:
    """Members left in our group after its leader died (e.g. python stubs of a crashed Triton).

    Safe against PID reuse: Linux does not hand out a PID while a process group still
    uses it as its id, so a live group with id ``proc.pid`` whose leader is gone is ours.
    """
    fields = _stat_fields(proc.pid)
    leader_gone = fields is None or fields[0] == "Z"
    return group_members(proc.pid) if leader_gone else []


def _signal_group(proc: Proc, sig: signal.Signals, timeout_s: float) -> str:
    """Send ``sig`` to the group and wait up to ``timeout_s`` for all of it to exit."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return "stopped"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not is_alive(proc) and not group_members(proc.pid):
            return "stopped"
        time.sleep(0.1)
    return "timed out"


def log_tail(log: Path, lines: int = 25) -> str:
    """The last ``lines`` lines of a log (of its latest start only), indented for messages."""
    try:
        text = log.read_text(errors="replace")
    except FileNotFoundError:
        return "    (no log written)"
    latest = text.rsplit("\n===== ", 1)[-1]
    return "\n".join("    " + line for line in latest.splitlines()[-lines:])
