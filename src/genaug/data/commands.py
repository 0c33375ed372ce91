"""``genaug data``: snapshot a folder or S3 prefix as a dataset version, and look at versions.

    genaug data snapshot NAME SOURCE [--label L] [--on-bad stop|skip] [--on-conflict stop|drop]
    genaug data list
    genaug data show NAME[@VERSION]          VERSION: latest (default), a label or an id
    genaug data diff NAME A B
    genaug data limits                       how many images fit in memory, per size
    genaug data export DATASET OUT [--size 64] [--format jpg|png|webp] [--colour] [--cut CLASS=SHARE ...]

Versions live in the stack's S3 store (``.genaug/stack.env`` locally).
"""

from __future__ import annotations

import argparse
import json
import sys

from genaug.data.folders import SPLITS


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genaug data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    snap = sub.add_parser("snapshot", help="make (or find) the version of a source; prints its id")
    snap.add_argument("name", help="the dataset's name, e.g. parts")
    snap.add_argument("source", help="a folder of class folders, or s3://bucket/prefix/")
    snap.add_argument("--label", default=None, help="a name for this version, e.g. 2026-12-04")
    snap.add_argument("--on-bad", default="stop", choices=("stop", "skip"),
                      help="an undecodable or non-image file: stop (default) or leave it out and record it")
    snap.add_argument("--on-conflict", default="stop", choices=("stop", "drop"),
                      help="one image under two classes: stop (default) or leave every copy out")
    snap.add_argument("--json", action="store_true", help="print the whole report as JSON")
    sub.add_parser("list", help="every dataset and its newest version")
    show = sub.add_parser("show", help="a version's classes, counts, sizes and changes")
    show.add_argument("ref", metavar="NAME[@VERSION]")
    show.add_argument("--json", action="store_true")
    d = sub.add_parser("diff", help="images added, removed and relabelled between two versions")
    d.add_argument("name")
    d.add_argument("a")
    d.add_argument("b")
    sub.add_parser("limits", help="how many images fit in memory at each size, here and on 24 and 80 GB machines")
    ex = sub.add_parser("export", help="write a built-in dataset as train/ and test/ class folders of image files")
    ex.add_argument("dataset", help="fashion_mnist, mnist or cifar10")
    ex.add_argument("out", help="a new folder")
    ex.add_argument("--size", type=int, default=64, help="side in pixels (Lanczos resize), default 64")
    ex.add_argument("--format", default="jpg", help="jpg (default), png or webp")
    ex.add_argument("--colour", action="store_true", help="grey images written as RGB")
    ex.add_argument("--cut", action="append", default=[], metavar="CLASS=SHARE",
                    help="keep only this share of a class's training images, e.g. Shirt=0.1 (repeatable)")
    return parser


def _export(args) -> int:
    from pathlib import Path

    from genaug import catalog
    from genaug.data.export import export, parse_cuts
    from genaug.data.sources import load_raw
    from genaug.services.store import Store, StoreError

    spec = catalog.dataset(args.dataset)
    try:
        store = Store()
    except StoreError:
        store = None  # no stack: the local files or a download
    counts = export(spec, load_raw(spec, store=store), Path(args.out), args.size, args.format, args.colour,
                    parse_cuts(args.cut, spec))
    for split, per_class in counts.items():
        print(f"  {split}: " + ", ".join(f"{c} {n}" for c, n in per_class.items()), file=sys.stderr)
    print(args.out)
    return 0


def _counts_table(counts: dict, classes: list[str]) -> list[str]:
    width = max(len(c) for c in classes) + 2
    lines = ["  " + "class".ljust(width) + "".join(s.rjust(8) for s in SPLITS)]
    for c in classes:
        lines.append("  " + c.ljust(width) + "".join(str(counts[s].get(c, 0)).rjust(8) for s in SPLITS))
    return lines


def _changes(changes: dict) -> list[str]:
    lines = []
    for kind in ("added", "removed", "relabelled"):
        items = changes[kind]
        lines.append(f"  {kind}: {len(items)}" + (f" ({', '.join(items[:10])}{', ...' if len(items) > 10 else ''})"
                                                  if items else ""))
    return lines


def main(argv: list[str]) -> int:
    from genaug.data.snapshots import SnapshotError, diff, load_manifest, names, resolve_version, show, snapshot
    from genaug.services.endpoints import load_stack_env
    from genaug.services.store import Store, StoreError

    args = _parser().parse_args(argv)
    load_stack_env()
    if args.command == "limits":
        from genaug.data.memory import limits_table

        print(limits_table())
        return 0
    if args.command == "export":
        from genaug.data.export import ExportError
        from genaug.data.sources import DataNotFound

        try:
            return _export(args)
        except (ExportError, DataNotFound, StoreError, ValueError) as err:
            print(f"genaug: {err}", file=sys.stderr)
            return 2
    try:
        store = Store()
        if args.command == "snapshot":
            report = snapshot(args.name, args.source, store, args.label, args.on_bad, args.on_conflict)
            if args.json:
                print(json.dumps(report, indent=2))
            else:
                state = "new version" if report["created"] else "unchanged: the existing version"
                print(f"{args.name}: {state}, {report['n_images']} images, {report['new_objects']} new objects "
                      f"stored", file=sys.stderr)
                for kind in ("skipped", "duplicates", "conflicts_dropped"):
                    if report[kind]:
                        print(f"  {kind}: {len(report[kind])} ({', '.join(report[kind][:10])})", file=sys.stderr)
                print(report["version"])
        elif args.command == "list":
            for name in names(store):
                version = resolve_version(name, "latest", store)
                manifest, meta = load_manifest(name, version, store)
                kind = "built-in" if manifest.get("kind") == "builtin" else "snapshot"
                print(f"{name:<24} {version[:12]}  {meta['n_images']:>8} images  {kind:<8}  "
                      f"label {meta.get('label') or '-'}")
        elif args.command == "show":
            name, _, ref = args.ref.partition("@")
            info = show(name, ref or "latest", store)
            if args.json:
                print(json.dumps(info, indent=2))
                return 0
            g = info["geometry"]
            print(f"{name}@{info['version']}  (label {info['label'] or '-'}, from {info['source']})")
            print(f"  images become {g['channels']}x{g['size']}x{g['size']} "
                  f"({g.get('policy', 'native size, official splits')}); "
                  f"sizes {info['sizes']}; modes {info['modes']}")
            print("\n".join(_counts_table(info["counts"], info["classes"])))
            print(f"changes since {(info['previous'] or 'nothing')[:12]}:")
            print("\n".join(_changes(info["changes"])))
        else:
            a = load_manifest(args.name, resolve_version(args.name, args.a, store), store)[0]
            b = load_manifest(args.name, resolve_version(args.name, args.b, store), store)[0]
            print("\n".join(_changes(diff(a, b))))
    except (SnapshotError, StoreError) as err:
        print(f"genaug: {err}", file=sys.stderr)
        return 2
    return 0
