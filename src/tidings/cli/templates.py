"""`tidings templates`: list and seed a tenant's templates."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from tidings.cli.common import settings_or_exit

app = typer.Typer(help="Manage templates.", no_args_is_help=True)


@app.command("list")
def list_templates(
    tenant: Annotated[str | None, typer.Option(help="Show this tenant's templates")] = None,
) -> None:
    """List the built-in templates, or a tenant's templates."""
    from tidings.template.defaults import DEFAULT_TEMPLATES

    if tenant is None:
        for t in DEFAULT_TEMPLATES:
            typer.echo(
                f"{t['key']:<24} {t['category']:<11} {t['priority']:<7} "
                f"{','.join(t['default_channels'])}"
            )
        return
    from tidings.cli.runtime import cli_context
    from tidings.template import repository

    async def run() -> None:
        async with cli_context(settings_or_exit()) as ctx, ctx.db.transaction() as session:
            for row in await repository.list_all(session, tenant):
                typer.echo(
                    f"{row.key:<24} {row.category:<11} {row.priority:<7} "
                    f"{','.join(row.default_channels)}"
                )

    asyncio.run(run())


@app.command()
def seed(
    tenant: Annotated[str, typer.Option(help="Tenant to seed")],
    force: Annotated[bool, typer.Option(help="Restore edited or deleted defaults")] = False,
) -> None:
    """Insert the default hiring templates for a tenant."""
    from tidings.cli.runtime import cli_context
    from tidings.template import service

    async def run() -> int:
        async with cli_context(settings_or_exit()) as ctx, ctx.db.transaction() as session:
            return await service.seed(session, ctx, tenant, force=force)

    count = asyncio.run(run())
    if count == 0:
        typer.echo(f"{tenant} was seeded before; its edits stay (use --force to restore)")
    else:
        typer.echo(f"seeded {count} templates for {tenant}" + (" (forced)" if force else ""))
