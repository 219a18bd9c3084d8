"""The active rule sets live in the database: a reload stores them in its transaction, and every
replica compares their digests with the rules it holds in memory before it decides, rebuilding
them from the stored files when they differ (replicas share no file system)."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.eligibility import domain, tables
from services.eligibility.handlers import common
from services.eligibility.handlers.common import Service

log = logging.getLogger("everydoor.eligibility.rulesets")

A = tables.active_ruleset

# Serialises reloads, re-evaluation starts and the first replica's seeding of the table.
RELOAD_LOCK = 727275


def from_files(svc: Service) -> tuple[list[tuple[str, str]], domain.RuleBook]:
    """This replica's rule-set files and the book they make (RuleSetError when invalid)."""
    files = common.read_rulesets(svc.settings.rulesets_dirs)
    return files, common.build_rulebook(files)


def digests(book: domain.RuleBook) -> dict[str, str]:
    """Rule-set id → digest of every rule set of a book."""
    return {rs.id: rs.digest for rs in book.all}


async def sync(session: AsyncSession, svc: Service) -> domain.RuleBook:
    """The rule book active in the database, in memory: one small select when nothing changed,
    a rebuild from the stored files when another replica reloaded."""
    stored = dict((await session.execute(sa.select(A.c.ruleset_id, A.c.digest))).tuples().all())
    if stored and stored != digests(svc.rulebook):
        files = (await session.execute(sa.select(A.c.source, A.c.content)
                                       .order_by(A.c.ruleset_id))).tuples().all()
        svc.rulebook = common.build_rulebook(list(files))
        log.info("rule sets changed by a reload elsewhere; now deciding by %s",
                 ", ".join(f"{k}@{v}" for k, v in sorted(digests(svc.rulebook).items())))
    return svc.rulebook


async def activate(session: AsyncSession, svc: Service, *, book: domain.RuleBook,
                   files: list[tuple[str, str]], actor: str | None) -> None:
    """Make a validated book (built from `files`) the active one, for every replica once the
    caller's transaction commits; rule sets whose digest is unchanged keep their activation."""
    rows = []
    for name, text in files:
        rs = book.get(str(common.parse_document(name, text)["id"]).strip())
        rows.append({"ruleset_id": rs.id, "digest": rs.digest, "source": name, "content": text,
                     "activated_by": actor})
    await session.execute(sa.delete(A).where(A.c.ruleset_id.not_in([r["ruleset_id"]
                                                                    for r in rows])))
    stmt = pg_insert(A)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=[A.c.ruleset_id],
        set_={c: stmt.excluded[c] for c in ("digest", "source", "content", "activated_by")}
        | {"activated_at": sa.func.now()},
        where=A.c.digest != stmt.excluded.digest), rows)
    svc.rulebook = book


async def start_up(session: AsyncSession, svc: Service) -> None:
    """At start-up: the first replica ever activates its files; any later one adopts the active
    rule sets (its own files take effect only through a reload)."""
    files, own = from_files(svc)
    await session.execute(sa.select(sa.func.pg_advisory_xact_lock(RELOAD_LOCK)))
    if await session.scalar(sa.select(sa.func.count()).select_from(A)) == 0:
        await activate(session, svc, book=own, files=files, actor="start-up")
        return
    if digests(await sync(session, svc)) != digests(own):
        log.warning("the rule-set files here differ from the active rule sets; these decide "
                    "until POST /v1/rulesets/{id}/reevaluate reloads the files")
