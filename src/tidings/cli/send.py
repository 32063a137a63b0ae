"""`tidings send`: accept a send from the command line and follow it to the end."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tidings.cli.common import fail, settings_or_exit

ACTIVE = ("pending", "scheduled", "sending")


def parse_data(pairs: list[str], data_file: Path | None) -> dict[str, Any]:
    """``--data key=value`` pairs (values parsed as JSON when they are JSON) over a JSON file."""
    data: dict[str, Any] = {}
    if data_file is not None:
        try:
            loaded = json.loads(data_file.read_text())
        except (OSError, ValueError) as exc:
            fail(f"cannot read {data_file}: {exc}")
        if not isinstance(loaded, dict):
            fail(f"{data_file} must hold a JSON object")
        data.update(loaded)
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            fail(f"--data takes key=value, not {pair!r}")
        try:
            data[key] = json.loads(raw)
        except ValueError:
            data[key] = raw
    return data


def send(
    tenant: Annotated[str, typer.Option(help="Tenant to send as")],
    to: Annotated[list[str] | None, typer.Option("--to", help="Recipient id; repeatable")] = None,
    topic: Annotated[str | None, typer.Option(help="Send to every member of this topic")] = None,
    template: Annotated[str | None, typer.Option(help="Template key")] = None,
    title: Annotated[str | None, typer.Option(help="Literal title (with --body)")] = None,
    body: Annotated[str | None, typer.Option(help="Literal body (with --title)")] = None,
    data: Annotated[
        list[str] | None, typer.Option("--data", help="Template variable key=value; repeatable")
    ] = None,
    data_file: Annotated[
        Path | None, typer.Option(help="JSON object of template variables")
    ] = None,
    channel: Annotated[
        list[str] | None, typer.Option("--channel", help="in_app, email, sms, push, webhook")
    ] = None,
    category: Annotated[str | None, typer.Option(help="Category slug")] = None,
    priority: Annotated[str | None, typer.Option(help="low, normal, high or urgent")] = None,
    idempotency_key: Annotated[str | None, typer.Option(help="Replay-safe key")] = None,
    follow: Annotated[bool, typer.Option(help="Wait and show delivery progress")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to follow at most", min=0)] = 120.0,
) -> None:
    """Send a template or literal text to recipients and/or a topic, then follow it."""
    from tidings.auth.principal import Principal
    from tidings.cli.runtime import cli_context
    from tidings.errors import TidingsError
    from tidings.send import service
    from tidings.send.schemas import SendCreate

    fields: dict[str, Any] = {
        "recipients": to or [],
        "topic": topic,
        "template": template,
        "title": title,
        "body": body,
        "channels": channel or None,
        "category": category,
        "priority": priority,
        "idempotency_key": idempotency_key,
    }
    values = {k: v for k, v in fields.items() if v is not None}
    parsed = parse_data(data or [], data_file)
    if parsed:
        values["data"] = parsed
    try:
        payload = SendCreate.model_validate(values)
    except ValidationError as exc:
        fail(
            "; ".join(f"{'.'.join(map(str, e['loc'])) or 'send'}: {e['msg']}" for e in exc.errors())
        )
    principal = Principal(tenant=tenant, sub="cli", roles=frozenset({"service"}))
    settings = settings_or_exit()

    async def run() -> None:
        async with cli_context(settings) as ctx:
            try:
                async with ctx.db.transaction() as session:
                    accepted = await service.accept(session, ctx, principal, payload)
            except TidingsError as exc:
                fail(exc.detail)
            typer.echo(accepted.model_dump_json(indent=2))
            if follow:
                await _follow(ctx, principal, accepted.id, timeout)

    asyncio.run(run())


async def _follow(ctx: Any, principal: Any, send_id: str, timeout: float) -> None:
    from tidings.send import service

    deadline = time.monotonic() + timeout
    columns = (TextColumn("delivering"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task("send", total=None)
        while True:
            async with ctx.db.transaction(write=False) as session:
                status = await service.read(session, ctx, principal, send_id)
            total = sum(n for per in status.counts.values() for n in per.values())
            active = sum(n for per in status.counts.values() for s, n in per.items() if s in ACTIVE)
            progress.update(task, total=total or None, completed=total - active)
            if status.status in ("completed", "cancelled"):
                break
            if time.monotonic() > deadline:
                typer.echo("still in progress; delivery continues in the service", err=True)
                break
            await asyncio.sleep(0.5)
    typer.echo(json.dumps({"status": status.status, "counts": status.counts}, indent=2))
