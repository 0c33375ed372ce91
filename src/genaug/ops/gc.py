"""``genaug gc``: bounded storage under one retention policy (genaug.ops.policy).

    genaug gc [--pipeline-root runs | s3://bucket/prefix] [--keep-versions N] [--max-age-days D]
              [--keep-snapshots N] [--staging-hours H] [--json]     what would go (a dry run)
    genaug gc ... --apply                                            delete it

The S3 lifecycle rules of the prefixes that only expire (genaug.ops.lifecycle) are set by
the bucket set-up Job, with the admin keys this command does not hold.

Endpoints and identities as every command finds them: the local stack's .genaug/stack.env
and admin.env, or GENAUG_S3_* (the steps' identity), GENAUG_PROMOTE_S3_* and
GENAUG_PROMOTE_MLFLOW_* (the promote identity) and MLFLOW_TRACKING_URI on a cluster, plus
GENAUG_MLFLOW_BACKEND_URI (MLflow's database, to purge deleted runs).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import fields
from pathlib import Path

from genaug.ops.policy import RetentionPolicy


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def table(plan, result: dict | None = None) -> str:
    """One line per category: what the plan deletes (and, applied, what was deleted)."""
    lines = [f"{'category':<16} {'to delete':>9} {'size':>10}" + (f" {'deleted':>8} {'failed':>6}" if result else "")]
    for category, items in plan.by_category().items():
        line = f"{category:<16} {len(items):>9} {_size(sum(d.size for d in items)):>10}"
        if result:
            line += f" {result[category]['deleted']:>8} {result[category]['failed']:>6}"
        lines.append(line)
    lines.append(f"{'total':<16} {len(plan.deletions):>9} {_size(plan.bytes()):>10}")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genaug gc", description="Delete what the retention policy lets go of; "
                                     "a dry run unless --apply. Nothing a champion, a previous alias or the "
                                     "ledger references is ever deleted.")
    parser.add_argument("--apply", action="store_true", help="delete; without it, only print what would go")
    parser.add_argument("--pipeline-root", default=None,
                        help="where KFP writes task outputs: a folder of local runs (make gc passes runs/) or a "
                             "cluster's s3://bucket/prefix; unset: outputs are left alone")
    parser.add_argument("--kfp-cache", default=None, help="the local KFP cache folder (default: the stack's kfp-cache)")
    parser.add_argument("--json", action="store_true", help="print the plan (and result) as JSON")
    defaults = RetentionPolicy()
    for f in fields(RetentionPolicy):
        parser.add_argument("--" + f.name.replace("_", "-"), type=type(getattr(defaults, f.name)), default=None,
                            help=f"default {getattr(defaults, f.name)}")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    from genaug.services.endpoints import load_admin_env, load_stack_env, stack_env_path
    from genaug.services.store import Store, promotion_store

    load_stack_env()
    load_admin_env()
    try:
        policy = RetentionPolicy(**{f.name: getattr(args, f.name) for f in fields(RetentionPolicy)
                                    if getattr(args, f.name) is not None})
    except ValueError as err:
        print(f"genaug gc: {err}", file=sys.stderr)
        return 2
    if args.pipeline_root and not args.pipeline_root.startswith("s3://") and not Path(args.pipeline_root).is_dir():
        print(f"genaug gc: --pipeline-root {args.pipeline_root!r} is not a folder; give the runs folder "
              "(make gc passes runs/) or s3://bucket/prefix", file=sys.stderr)
        return 2
    from genaug.ops import collect, plan as planning
    from genaug.ops.sweep import Sweep
    from genaug.services import tracking

    cache = Path(args.kfp_cache or os.environ.get("GENAUG_KFP_CACHE_DIR") or stack_env_path().parent / "kfp-cache")
    store, promote = Store(), promotion_store()
    inv = collect.collect(store, promote, args.pipeline_root, cache, tracking=tracking.configured())
    the_plan = planning.plan(inv, policy)
    result = Sweep(store, promote, collect.pipeline_root_store(store)).apply(the_plan) if args.apply else None
    if args.json:
        print(json.dumps({"policy": policy.as_dict(), "applied": args.apply,
                          "deletions": [d.__dict__ | {"handle": list(d.handle)} for d in the_plan.deletions],
                          "result": result}, indent=2, default=str))
    else:
        print(table(the_plan, result))
        if not args.apply:
            print("dry run: nothing was deleted; add --apply to delete the above")
    return 1 if result and any(r["failed"] for r in result.values()) else 0
