"""``python -m genaug.stack up|down|status``: the local stack of real servers.

    up      start SeaweedFS (S3), MLflow and Triton on loopback, or keep those running;
            writes .genaug/stack.env (endpoints, S3 keys) and .genaug/admin.env (Triton
            admin key), then reloads the champions listed in the promotion ledger
    down    stop exactly the processes `up` started (SIGTERM, then SIGKILL)
    status  health of each server; exit status 1 if any is down

Ports: GENAUG_<NAME>_PORT (e.g. GENAUG_S3_PORT=8333, GENAUG_MLFLOW_PORT=5000,
GENAUG_TRITON_GRPC_PORT=8001), else the ports this stack used last, else defaults;
--free-ports takes any free loopback ports instead of defaults.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from genaug.stack import launcher
from genaug.stack.config import default_state_dir, default_triton_venv
from genaug.stack.errors import StackError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m genaug.stack", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("up", "down", "status"):
        cmd = sub.add_parser(name)
        cmd.add_argument("--state-dir", type=Path, default=None,
                         help="state folder (default: $GENAUG_STATE_DIR or ./.genaug)")
        if name == "up":
            cmd.add_argument("--free-ports", action="store_true",
                             help="pick free loopback ports instead of the defaults")
            cmd.add_argument("--triton-venv", type=Path, default=None,
                             help="Triton's venv (default: $GENAUG_TRITON_VENV or ./.genaug/triton-venv)")
        if name == "down":
            cmd.add_argument("--timeout", type=float, default=20.0,
                             help="seconds between SIGTERM and SIGKILL (default 20)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    state_dir = (args.state_dir or default_state_dir()).resolve()
    try:
        if args.command == "up":
            venv = (args.triton_venv or default_triton_venv()).resolve()
            launcher.up(state_dir, venv, free_ports=args.free_ports)
        elif args.command == "down":
            launcher.down(state_dir, timeout_s=args.timeout)
        else:
            return 0 if launcher.status(state_dir) else 1
    except StackError as err:
        print(f"genaug stack {args.command}: {err}", file=sys.stderr)
        return 1
    return 0
