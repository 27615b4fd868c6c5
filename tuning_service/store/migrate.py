"""Bring a results database to the current schema with Alembic, one process at a time."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tuning_service.store.engine import StoreError, redact

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# The newest revision in migrations/versions (a test keeps the two equal): a database
# already there is recognised with one query, without loading Alembic's scripts.
HEAD = "0005"
# Any fixed 64-bit number: the PostgreSQL advisory lock that serializes migrations.
_PG_LOCK_KEY = 0x7475_6E69_6E67  # "tuning"


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    if head is None:  # pragma: no cover - the package ships its migrations
        raise StoreError(f"no migrations found in {MIGRATIONS}")
    return head


def current_revision(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest revision inside one transaction that holds its write lock:
    a new one is built from the declared schema (`create_current`), an older one migrated.

    Two sweeps opening a new database at once: the second waits for the lock, then
    finds the schema current and does nothing.
    """
    if stored_revision(engine) == HEAD:
        return
    with engine.begin() as conn:  # SQLite: BEGIN IMMEDIATE takes the write lock
        _lock(conn)
        if _is_new(conn):
            create_current(conn)
            return
    migrate(engine)


def migrate(engine: Engine) -> None:
    """Run Alembic's migrations from the database's revision (none: an empty database) to the newest."""
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(MIGRATIONS))
    head = script.get_current_head()
    with engine.begin() as conn:
        _lock(conn)
        current = current_revision(conn)
        if current == head:
            return
        if current is not None and current not in {s.revision for s in script.walk_revisions()}:
            raise StoreError(
                f"results database {redact(engine.url)!r} has schema revision {current!r}, newer than "
                f"this tuning-service knows (head {head!r}); upgrade tuning-service"
            )
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def create_current(conn: Connection) -> None:
    """Build every table of the declared schema and record the newest revision, as the migrations
    would (a test compares the two), without importing Alembic's commands and running its
    scripts, which took most of a first sweep's time in the store (`benchmarks.startup`)."""
    import sqlalchemy as sa

    from tuning_service.store import scheduletables, schema  # noqa: F401 - the scheduler's tables join the metadata

    schema.metadata.create_all(conn)
    version = sa.Table(  # Alembic's own version table
        "alembic_version",
        sa.MetaData(),
        sa.Column("version_num", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
    )
    version.create(conn)
    conn.execute(version.insert().values(version_num=HEAD))


def _is_new(conn: Connection) -> bool:
    """No revision and none of the store's tables: a database to build, not to migrate (it may
    hold other applications' tables)."""
    import sqlalchemy as sa

    from tuning_service.store import schema

    found = set(sa.inspect(conn).get_table_names())
    return "alembic_version" not in found and not found & set(schema.metadata.tables)


def _lock(conn: Connection) -> None:
    """PostgreSQL: the advisory lock that serializes migrations (SQLite's BEGIN IMMEDIATE has it)."""
    import sqlalchemy as sa

    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})


def stored_revision(engine: Engine) -> str | None:
    """The revision recorded in the database, or None where it has no revision table yet.

    One query, without Alembic: the commands that only read open the database this way
    (importing Alembic's migration runtime took a third of a second of `results`). A database
    that cannot be reached or read raises, as Alembic's own check would."""
    import sqlalchemy as sa

    with engine.execution_options(readonly=True).connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        revision: str | None = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        return revision
