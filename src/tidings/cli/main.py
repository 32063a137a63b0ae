"""The `tidings` command."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from tidings.cli import send, templates
from tidings.cli.common import fail, settings_or_exit

app = typer.Typer(
    help="Tidings: notifications and communication for hiring platforms.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(templates.app, name="templates")
app.command("send")(send.send)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on", min=1, max=65535)] = 8000,
    workers: Annotated[
        int,
        typer.Option(help="API processes (more than 1 needs PostgreSQL and Redis)", min=1, max=64),
    ] = 1,
) -> None:
    """Run the HTTP API (embedded mode: also delivers and schedules in-process)."""
    import uvicorn

    from tidings.db import Database
    from tidings.migrate import SchemaNotReady, ensure_schema

    settings = settings_or_exit()
    if workers > 1 and (settings.is_sqlite or not settings.redis_url):
        fail("--workers above 1 needs TIDINGS_DATABASE_URL on PostgreSQL and TIDINGS_REDIS_URL")
    if not settings.is_sqlite:

        async def check() -> None:
            db = Database(settings.resolved_database_url)
            try:
                await ensure_schema(db, settings)
            finally:
                await db.dispose()

        try:
            asyncio.run(check())
        except SchemaNotReady as exc:
            fail(str(exc), code=1)
        except OSError as exc:
            fail(f"cannot reach the database: {exc}", code=1)
    if workers > 1:
        _share_metrics(settings.data_dir / "metrics")
    uvicorn.run(
        "tidings.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,  # it would log raw query strings; Tidings writes its own
        log_config=None,
        server_header=False,
        # The standard event loop, not uvloop: a send on SQLite runs to its end without
        # yielding, and under load uvloop left some connections waiting their turn for
        # hundreds of ms (wrk -c32: p99 268-333 ms, 56-67 ms on asyncio; the same
        # throughput; live latency alike; see docs/benchmarks.md, 2026-12-07).
        loop="asyncio",
    )


def _share_metrics(directory: Path) -> None:
    """Let /metrics sum the counters of every API process (prometheus multiprocess mode)."""
    import os
    import shutil

    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        shutil.rmtree(directory, ignore_errors=True)  # values of processes long gone
        directory.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)


@app.command()
def worker(
    queue: Annotated[
        list[str] | None,
        typer.Option("--queue", "-Q", help="Queue to consume (repeatable); default: all"),
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Worker processes", min=1, max=256)] = 2,
    pool: Annotated[str, typer.Option(help="prefork, threads or solo")] = "prefork",
) -> None:
    """Run Celery workers (distributed mode; needs TIDINGS_BROKER_URL)."""
    settings = settings_or_exit()
    if not settings.broker_url:
        fail("tidings worker needs TIDINGS_BROKER_URL (redis://... or amqp://...)")
    if pool not in ("prefork", "threads", "solo"):
        fail("--pool is prefork, threads or solo")
    from tidings.worker import QUEUES, celery_app

    queues = queue or list(QUEUES)
    unknown = sorted(set(queues) - set(QUEUES))
    if unknown:
        fail(f"unknown queue(s) {', '.join(unknown)}; the queues are {', '.join(QUEUES)}")
    celery_app.worker_main(
        [
            "worker",
            "--queues",
            ",".join(queues),
            "--concurrency",
            str(concurrency),
            "--pool",
            pool,
            "--loglevel",
            settings.log_level,
            "--hostname",
            "tidings@%h",
            "--without-mingle",
            "--without-gossip",
        ]
    )


@app.command()
def beat() -> None:
    """Run the calendar scheduler (retention, and later digests and overdue tasks).

    Recovery of deliveries never depends on it; running two is harmless.
    """
    settings = settings_or_exit()
    if not settings.broker_url:
        fail("tidings beat needs TIDINGS_BROKER_URL")
    from tidings.worker import celery_app

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    celery_app.start(
        [
            "beat",
            "--loglevel",
            settings.log_level,
            "--schedule",
            str(settings.data_dir / "beat-schedule"),
        ]
    )


@app.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    from tidings.db import Database
    from tidings.migrate import upgrade

    settings = settings_or_exit()
    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)

    async def run() -> None:
        db = Database(settings.resolved_database_url)
        try:
            await upgrade(db)
        finally:
            await db.dispose()

    asyncio.run(run())
    typer.echo("database schema is up to date")


@app.command()
def token(
    tenant: Annotated[str, typer.Option(help="Tenant id the token acts in")],
    sub: Annotated[str, typer.Option(help="Subject: a recipient id, or a service name")],
    role: Annotated[
        list[str] | None, typer.Option(help="Role (admin, service); repeatable")
    ] = None,
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds", min=1)] = 3600,
) -> None:
    """Print a signed bearer token (HS256 secret or RS256 private key)."""
    from tidings.auth.tokens import issue_token
    from tidings.config import ConfigError

    settings = settings_or_exit()
    try:
        value = issue_token(settings, tenant=tenant, sub=sub, roles=role or [], ttl_seconds=ttl)
    except (ConfigError, ValueError) as exc:
        fail(str(exc))
    typer.echo(value)
