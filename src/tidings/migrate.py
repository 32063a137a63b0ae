"""Schema migrations: automatic on SQLite, explicit (`tidings migrate`) on PostgreSQL."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from tidings.config import Settings
from tidings.db import Database

MIGRATIONS = Path(__file__).parent / "migrations"


class SchemaNotReady(RuntimeError):
    """The database is not migrated to the version this code needs."""


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@functools.cache
def head_revision() -> str | None:
    """The revision this code needs (read from the migration scripts once per process)."""
    return ScriptDirectory.from_config(alembic_config("")).get_current_head()


async def upgrade(db: Database) -> None:
    config = alembic_config(db.url)

    def run(connection: Any) -> None:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    async with db.write_engine.begin() as conn:
        await conn.run_sync(run)


async def current_revision(db: Database) -> str | None:
    async with db.engine.connect() as conn:
        return await conn.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


async def ensure_schema(db: Database, settings: Settings) -> None:
    """Migrate SQLite in place; refuse to run on an unmigrated PostgreSQL."""
    if db.is_sqlite:
        await upgrade(db)
        return
    head = head_revision()
    current = await current_revision(db)
    if current != head:
        raise SchemaNotReady(
            f"the database schema is at {current or 'nothing'}, this version needs {head}: "
            "run `tidings migrate` first"
        )
