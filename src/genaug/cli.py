"""``genaug``: run any pipeline step from the shell, without KFP.

    genaug steps                                   list the steps
    genaug step prepare_data --data '{"dataset": "mnist", "max_train": 1200}' --out-path /tmp/data.npz
    genaug validate --generator dcgan ...          the parameter check alone
    genaug data snapshot NAME SOURCE | list | show NAME[@VERSION] | diff NAME A B   your own datasets
    genaug data export fashion_mnist OUT --size 64 --colour [--cut Shirt=0.1]     a built-in one as files
    genaug infer generator --model M --labels 0,1,2 --out grid.png
    genaug infer classifier --model M IMAGE...     class names and probabilities
    genaug promote --rollback MODEL                serve the previous version again
    genaug promote --status [--json]               what serves, from the ledger (--json: for scripts)
    genaug gc [--apply] [--pipeline-root runs]     delete what the retention policy lets go of (dry run by default)
    genaug backup TARGET [--keep N]                MLflow, the ledger and the served models (docs/backup.md)
    genaug restore TARGET [--force]                into a new stack, or a cluster with MLflow stopped

A step's options come from its function signature; dict parameters and sections
(genaug.sections: JSON objects whose missing fields take their defaults) take JSON, lists JSON
or "a,b,c", booleans true/false.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import types
import typing

from genaug import steps
from genaug.params import ParamError
from genaug.params import main as validate_main
from genaug.sections import Section

def _flag(text: str) -> bool:
    value = text.strip().lower()
    if value not in ("1", "0", "true", "false", "yes", "no"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a boolean; use true or false")
    return value in ("1", "true", "yes")


def _list(text: str) -> list:
    """A JSON list, or comma-separated values (kept as text; the step checks their types)."""
    text = text.strip()
    return json.loads(text) if text.startswith("[") else [v.strip() for v in text.split(",") if v.strip()]


_PARSERS = {str: str, int: int, float: float, dict: json.loads, bool: _flag, list: _list}


def _step_parser(name: str) -> tuple[argparse.ArgumentParser, typing.Callable]:
    fn = steps.get(name)
    target = inspect.unwrap(fn)
    hints = typing.get_type_hints(target)
    parser = argparse.ArgumentParser(prog=f"genaug step {name}",
                                     description=inspect.getdoc(target))
    for pname, param in inspect.signature(target).parameters.items():
        kind = hints.get(pname, str)
        if typing.get_origin(kind) in (typing.Union, types.UnionType):  # X | None -> X
            kind = next(k for k in typing.get_args(kind) if k is not type(None))
        kind = typing.get_origin(kind) or kind  # list[str] -> list
        if isinstance(kind, type) and issubclass(kind, Section):
            kind = dict  # the step coerces it (Section.coerce)
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
    if command == "data":
        from genaug.data.commands import main as data_main

        return data_main(rest)
    if command == "infer":
        return _infer(rest)
    if command == "promote":
        return _promote(rest)
    if command == "gc":
        from genaug.ops.gc import main as gc_main

        return gc_main(rest)
    if command in ("backup", "restore"):
        from genaug.ops.commands import main as ops_main

        return ops_main(command, rest)
    print(f"genaug: unknown command {' '.join(argv[:2])!r}; run 'genaug --help'", file=sys.stderr)
    return 2


def _infer(argv: list[str]) -> int:
    from genaug.serving import infer

    parser = argparse.ArgumentParser(prog="genaug infer", description="Call a served model over Triton gRPC.")
    sub = parser.add_subparsers(dest="kind", required=True)
    gen = sub.add_parser("generator", help="one generated image per label, as a PNG grid captioned with class names")
    gen.add_argument("--model", required=True, help="Triton model name, e.g. fashion_mnist-dcgan-generator")
    gen.add_argument("--labels", required=True, help="comma-separated class indices, e.g. 0,1,2")
    gen.add_argument("--seed", type=int, default=0, help="seed of the noise")
    gen.add_argument("--out", required=True, help="PNG file to write")
    clf = sub.add_parser("classifier", help="class probabilities for image files")
    clf.add_argument("--model", required=True, help="Triton model name, e.g. fashion_mnist-classifier")
    clf.add_argument("--top", type=int, default=3)
    clf.add_argument("images", nargs="+")
    args = parser.parse_args(argv)
    if args.kind == "generator":
        try:
            labels = [int(v) for v in args.labels.split(",") if v.strip()]
        except ValueError:
            parser.error(f"--labels {args.labels!r} must be comma-separated integers, e.g. 0,1,2")
        print(infer.generate(args.model, labels, args.out, args.seed))
    else:
        for row in infer.classify(args.model, args.images, args.top):
            print(row["file"] + ": " + ", ".join(f"{name} {p:.3f}" for name, p in row["top"]))
    return 0


def _promote(argv: list[str]) -> int:
    from genaug.services.triton import Triton
    from genaug.serving.ledger import Ledger
    from genaug.serving.promote import rollback
    from genaug.serving.repository import Repository
    from genaug.services.store import promotion_store

    parser = argparse.ArgumentParser(prog="genaug promote", description="Inspect or roll back what Triton serves.")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--rollback", metavar="MODEL", help="serve MODEL's previous version again")
    group.add_argument("--status", action="store_true",
                       help="print what serves, from the ledger, with an integrity check of each champion's files")
    parser.add_argument("--json", action="store_true", help="with --status: the whole ledger view as JSON, for scripts")
    args = parser.parse_args(argv)
    if args.json and not args.status:
        parser.error("--json goes with --status, e.g. genaug promote --status --json")
    from genaug.services.endpoints import load_admin_env, load_stack_env

    # An operator's command: the admin key sits beside the endpoints (.genaug/admin.env).
    load_stack_env()
    load_admin_env()
    store = promotion_store()
    if args.status:
        from genaug.serving.status import status, table

        report = status(store)
        print(json.dumps(report, indent=2) if args.json else table(report))
        return 0
    entry = Ledger(store).champion(args.rollback)
    if entry is None:
        print(f"genaug: {args.rollback!r} has never been promoted; `genaug promote --status` lists models",
              file=sys.stderr)
        return 2
    import numpy as np

    from genaug.serving import scoring

    meta = Repository(store).metadata(args.rollback, entry["version"])
    if meta["kind"] == "generator":
        probe, tolerance = scoring.generator_probe(len(_class_names(args.rollback))), scoring.GENERATOR_TOLERANCE
    else:
        from genaug.serving.infer import served_shape

        shape = served_shape(Triton(), args.rollback, "images")
        images = np.random.default_rng(0).integers(0, 256, (4, *shape), dtype=np.uint8)
        probe, tolerance = scoring.classifier_probe(images), scoring.CLASSIFIER_TOLERANCE
    event = rollback(args.rollback, store, Triton(), probe, tolerance)
    print(json.dumps(event, indent=2))
    return 0


def _class_names(model: str) -> list[str]:
    from genaug.services.triton import Triton
    from genaug.serving.infer import class_names

    return class_names(Triton(), model)


def entry() -> None:
    try:
        sys.exit(main())
    except ParamError as err:
        sys.exit(f"genaug: invalid parameters: {err}")
    except RuntimeError as err:  # StoreError, ServingError, TrackingError: already say the fix
        sys.exit(f"genaug: {err}")


if __name__ == "__main__":
    entry()
