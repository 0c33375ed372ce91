"""``genaug backup`` and ``genaug restore``: the command lines over genaug.ops.backup/restore."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from genaug.ops.manifest import BackupError

TARGET_HELP = ("a folder, or s3://bucket/prefix on another store (GENAUG_BACKUP_S3_ENDPOINT, "
               "GENAUG_BACKUP_S3_ACCESS_KEY, GENAUG_BACKUP_S3_SECRET_KEY)")
STATE_HELP = ("the local stack's state folder (default: $GENAUG_STATE_DIR or ./.genaug); on a cluster "
              "(GENAUG_POSTGRES_HOST set) leave it out")


def _parser(command: str) -> argparse.ArgumentParser:
    from genaug.ops import backup, restore

    doc = (backup if command == "backup" else restore).__doc__
    parser = argparse.ArgumentParser(prog=f"genaug {command}", description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", metavar="TARGET", help=TARGET_HELP)
    parser.add_argument("--state-dir", type=Path, default=None, help=STATE_HELP)
    if command == "backup":
        parser.add_argument("--keep", type=int, default=None, help="keep the N newest backups under TARGET")
    else:
        parser.add_argument("--force", action="store_true",
                            help="restore into an installation that is not empty, replacing its MLflow databases")
    return parser


def main(command: str, argv: list[str]) -> int:
    """Run ``genaug backup|restore`` with ``argv``; 0 on success, 1 with the reason on stderr."""
    from genaug.ops.site import site_from_env
    from genaug.ops.targets import open_target

    args = _parser(command).parse_args(argv)
    try:
        site = site_from_env(args.state_dir)
        target = open_target(args.target, site.s3.endpoint, site.state_dir)
        if command == "backup":
            from genaug.ops.backup import backup

            backup(site, target, args.keep)
        else:
            from genaug.ops.restore import restore

            restore(site, target, args.force)
    except BackupError as err:
        print(f"genaug {command}: {err}", file=sys.stderr)
        return 1
    return 0
