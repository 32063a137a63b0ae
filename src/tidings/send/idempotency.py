"""Idempotency keys: the first answer is stored in the same transaction as the send."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.errors import Conflict, Unprocessable
from tidings.kit.types import canonical_json
from tidings.models import IdempotencyKey

KEEP = timedelta(hours=24)


def resolve_key(field: str | None, header: str | None, loc: list[str | int]) -> str | None:
    if field is not None and header is not None and field != header:
        raise Unprocessable(
            "Idempotency-Key header and idempotency_key field differ", loc=[*loc, "idempotency_key"]
        )
    return field if field is not None else header


def fingerprint(body: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


async def _existing(session: AsyncSession, tenant_id: str, key: str) -> IdempotencyKey | None:
    result = await session.execute(
        select(IdempotencyKey)
        .where(IdempotencyKey.tenant_id == tenant_id, IdempotencyKey.key == key)
        .execution_options(populate_existing=True)
    )
    return result.scalar_one_or_none()


def _replay(row: IdempotencyKey, request_hash: str, key: str) -> dict[str, Any]:
    if row.request_hash != request_hash:
        raise Conflict(f"idempotency key {key!r} was used with a different request body")
    return row.response


async def begin(
    session: AsyncSession, *, tenant_id: str, key: str, request_hash: str, now: Any
) -> dict[str, Any] | None:
    """Reserve ``key``; return the stored answer when the key was used before.

    A concurrent request with the same key blocks on the key's row until the first
    transaction ends (PostgreSQL: unique index; SQLite: the write lock), then replays.
    """
    row = await _existing(session, tenant_id, key)
    if row is not None and row.expires_at > now:
        return _replay(row, request_hash, key)
    if row is not None:
        await session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.tenant_id == tenant_id, IdempotencyKey.key == key
            )
        )
    try:
        async with session.begin_nested():
            session.add(
                IdempotencyKey(
                    tenant_id=tenant_id,
                    key=key,
                    request_hash=request_hash,
                    status_code=0,
                    response={},
                    created_at=now,
                    expires_at=now + KEEP,
                )
            )
            await session.flush()
    except IntegrityError:
        row = await _existing(session, tenant_id, key)
        if row is None:  # the other request rolled back; the caller may retry
            raise Conflict(f"a request with idempotency key {key!r} is in flight") from None
        return _replay(row, request_hash, key)
    return None


async def finish(
    session: AsyncSession, *, tenant_id: str, key: str, status_code: int, response: dict[str, Any]
) -> None:
    await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.tenant_id == tenant_id, IdempotencyKey.key == key)
        .values(status_code=status_code, response=response)
    )
