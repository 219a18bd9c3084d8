"""`python -m services.registry.admin_units load FILE`: load the official administrative units."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from services.registry.config import Settings
from services.registry.handlers import admin_units
from shared import db
from shared.problems import Problem


async def load(path: Path, settings: Settings) -> int:
    """Migrate the registry database if needed, then upsert the file's units."""
    if settings.platform.everydoor_dev_mode:
        await db.create_database_if_missing(settings.db_url)
    engine = db.create_engine(settings.db_url, pool_size=1)
    try:
        await db.upgrade(engine, Path(__file__).parent / "migrations")
        async with db.transaction(db.sessionmaker(engine)) as session:
            with path.open(encoding="utf-8-sig", newline="") as fh:
                result = await admin_units.load_csv(session, fh)
    except Problem as exc:
        print(f"{path}: {exc.detail}", file=sys.stderr)
        for e in exc.extra.get("errors", []):
            print(f"  line {e.get('line', '-')}: {e['field']}: {e['message']}", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()
    print(f"{path}: {result.provinces} provinces, {result.communes} communes "
          f"({result.inserted} new, {result.updated} updated)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m services.registry.admin_units",
                                     description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("load", help="insert or update units from a CSV "
                                      "(code,level,name,parent_code,area_type)")
    cmd.add_argument("file", type=Path)
    args = parser.parse_args(argv)
    return asyncio.run(load(args.file, Settings()))


if __name__ == "__main__":
    sys.exit(main())
