from __future__ import annotations

from typing import NoReturn

import typer

from tidings.config import ConfigError, Settings, load_settings


def fail(message: str, code: int = 2) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        fail(f"invalid configuration:\n{exc}")
