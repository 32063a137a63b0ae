"""Shared fixtures: one integration suite, run on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tidings.auth.tokens import issue_token
from tidings.channels.registry import ProviderRegistry
from tidings.config import Settings, load_settings
from tidings.db import Database
from tidings.kit.clock import Clock
from tidings.main import create_app
from tidings.migrate import upgrade
from tidings.models import Base

pytest_plugins = [
    "tests.fixtures.smtp_sink",
    "tests.fixtures.push_service",
    "tests.fixtures.twilio_service",
    "tests.fixtures.webhook_receiver",
]
T = TypeVar("T")

TEST_DATABASE_URL = os.environ.get(
    "TIDINGS_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
TEST_REDIS_URL = os.environ.get("TIDINGS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
JWT_SECRET = "test-jwt-secret-that-is-long-enough-0123456789"
SECRET_KEY = "test-secret-key-that-is-long-enough-0123456789"


def need_service(name: str, reason: str) -> None:
    """Skip when a service is really absent, except in CI, where that is a failure."""
    if os.environ.get("CI"):
        pytest.fail(f"{name} is required in CI: {reason}")
    pytest.skip(f"{name} unavailable: {reason}")


def run_async(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion on a fresh loop in a thread (usable from any fixture)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for every test (migrating each time is slow)."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"

    async def migrate() -> None:
        db = Database(f"sqlite+aiosqlite:///{path}")
        await upgrade(db)
        await db.dispose()

    run_async(migrate)
    return path


async def _admin(statement: str) -> None:
    admin = create_async_engine(TEST_DATABASE_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await admin.dispose()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A database of this run's own on the test PostgreSQL server, dropped at the end."""
    name = f"tidings_test_{uuid.uuid4().hex[:12]}"
    try:
        run_async(lambda: _admin(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # any connection problem means "absent"
        need_service("PostgreSQL", f"{TEST_DATABASE_URL}: {exc}")
    base, _, _ = TEST_DATABASE_URL.rpartition("/")
    url = f"{base}/{name}"

    async def migrate() -> None:
        db = Database(url)
        await upgrade(db)
        await db.dispose()

    run_async(migrate)
    try:
        yield url
    finally:
        run_async(lambda: _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis server (skipped when absent, except in CI)."""
    import redis

    try:
        redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        need_service("Redis", f"{TEST_REDIS_URL}: {exc}")
    return TEST_REDIS_URL


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def _truncate(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
            await conn.execute(text(f"TRUNCATE {tables} CASCADE"))
    finally:
        await engine.dispose()


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    if backend == "sqlite":
        path = tmp_path / "tidings.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    url: str = request.getfixturevalue("pg_database")
    yield url
    run_async(lambda: _truncate(url))


def make_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "development",
        "data_dir": tmp_path / "data",
        "database_url": database_url,
        "jwt_secret": JWT_SECRET,
        "secret_key": SECRET_KEY,
        "log_format": "console",
        "sweep_interval_seconds": 0.05,
        "retry_base_seconds": 0.05,
        "retry_max_seconds": 0.2,
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url)


@dataclass
class Tokens:
    settings: Settings

    def make(self, tenant: str, sub: str, *roles: str, ttl: int = 600) -> dict[str, str]:
        token = issue_token(
            self.settings, tenant=tenant, sub=sub, roles=list(roles), ttl_seconds=ttl
        )
        return {"Authorization": f"Bearer {token}"}

    def service(self, tenant: str = "acme") -> dict[str, str]:
        return self.make(tenant, "ats-backend", "service")

    def admin(self, tenant: str = "acme") -> dict[str, str]:
        return self.make(tenant, "ops-admin", "admin")

    def user(self, sub: str, tenant: str = "acme") -> dict[str, str]:
        return self.make(tenant, sub)


@pytest.fixture
def tokens(settings: Settings) -> Tokens:
    return Tokens(settings)


class Service:
    """A running app (lifespan entered) and an in-process client for it."""

    def __init__(self, app: Any, client: httpx.AsyncClient) -> None:
        self.app = app
        self.client = client

    @property
    def ctx(self) -> Any:
        return self.app.state.ctx


@contextlib.asynccontextmanager
async def running(
    settings: Settings,
    *,
    clock: Clock | None = None,
    providers: ProviderRegistry | None = None,
    run_deliveries: bool = True,
) -> AsyncIterator[Service]:
    app = create_app(
        settings,
        clock=clock,
        providers=providers,
        run_deliveries=run_deliveries,
        configure_process=False,
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tidings.test") as client:
            yield Service(app, client)


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[Service]:
    async with running(settings) as svc:
        yield svc


@pytest.fixture
def client(service: Service) -> httpx.AsyncClient:
    return service.client
