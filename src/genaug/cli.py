"""``genaug``: run any pipeline step from the shell, without KFP.

    genaug steps                                   list the steps
    genaug step prepare_data --dataset fashion_mnist --profile smoke --out-path /tmp/data.npz
    genaug validate --generator dcgan ...          the parameter check alone

A step's options come from its function signature; dict parameters take JSON.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import typing

from genaug import steps
from genaug.params import ParamError
from genaug.params import main as validate_main

_PARSERS = {str: str, int: int, float: float, dict: json.loads}


def _step_parser(name: str) -> tuple[argparse.ArgumentParser, typing.Callable]:
    fn = steps.get(name)
    target = inspect.unwrap(fn)
    hints = typing.get_type_hints(target)
    parser = argparse.ArgumentParser(prog=f"genaug step {name}",
                                     description=inspect.getdoc(target))
    for pname, param in inspect.signature(target).parameters.items():
        kind = hints.get(pname, str)
        flag = "--" + pname.replace("_", "-")
        if param.default is inspect.Parameter.empty:
            parser.add_argument(flag, dest=pname, type=_PARSERS[kind], required=True)
        else:
            parser.add_argument(flag, dest=pname, type=_PARSERS[kind], default=param.default)
    return parser, fn


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "steps":
        print("\n".join(steps.STEP_NAMES))
        return 0
    if command == "validate":
        return validate_main(rest)
    if command == "step" and rest:
        try:
            parser, fn = _step_parser(rest[0])
        except ValueError as err:
            print(f"genaug: {err}", file=sys.stderr)
            return 2
        meta = fn(**vars(parser.parse_args(rest[1:])))
        print(json.dumps(meta, indent=2, default=str))
        return 0
    print(f"genaug: unknown command {' '.join(argv[:2])!r}; run 'genaug --help'", file=sys.stderr)
    return 2


def entry() -> None:
    try:
        sys.exit(main())
    except ParamError as err:
        sys.exit(f"genaug: invalid parameters: {err}")


if __name__ == "__main__":
    entry()
