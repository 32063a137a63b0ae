"""Every command and variable the deployment guide, compose file and units use exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer.main

from tidings.cli.main import app
from tidings.config import Settings

ROOT = Path(__file__).resolve().parents[2]
FILES = [
    "docs/deployment.md",
    "compose.yaml",
    "Dockerfile",
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "deploy").rglob("*") if p.is_file()),
]
# variables of the units themselves, not of Tidings
NOT_SETTINGS = {"TIDINGS_WORKER_QUEUES"}


def _commands() -> dict[str, set[str]]:
    """Each command and the options it takes."""
    group = typer.main.get_command(app)
    commands: dict[str, set[str]] = {}
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        options = {opt for param in command.params for opt in param.opts}
        commands[name] = options
        for sub_name, sub in getattr(command, "commands", {}).items():
            commands[f"{name} {sub_name}"] = {o for p in sub.params for o in p.opts}
    return commands


@pytest.mark.parametrize("path", FILES)
def test_variables_exist(path: str) -> None:
    text = (ROOT / path).read_text()
    known = {f"TIDINGS_{name.upper()}" for name in Settings.model_fields}
    used = set(re.findall(r"\bTIDINGS_[A-Z0-9_]+\b", text)) - NOT_SETTINGS
    assert used <= known, sorted(used - known)


# what may stand right before a command: the start of a line, a shell separator,
# a compose `command:` list, a Dockerfile CMD, `docker compose run --rm api`
_STARTS = {None, "command:", "CMD", "&&", ";", "|", "api", "$"}


def _invocations(text: str) -> list[list[str]]:
    """Each `tidings ...` call: shell lines and JSON-array commands alike."""
    calls = []
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        tokens = [t.strip("[]\",'`") for t in re.split(r"[\s,]+", line)]
        tokens = [t for t in tokens if t]
        for index, token in enumerate(tokens):
            before = tokens[index - 1] if index else None
            if token.endswith("/bin/tidings") or (token == "tidings" and before in _STARTS):
                calls.append(tokens[index + 1 :])
    return calls


@pytest.mark.parametrize("path", FILES)
def test_commands_and_options_exist(path: str) -> None:
    commands = _commands()
    calls = _invocations((ROOT / path).read_text())
    assert calls, f"{path} runs no tidings command"
    for args in calls:
        name = args[0] if args else ""
        if f"{name} {args[1] if len(args) > 1 else ''}" in commands:
            name = f"{name} {args[1]}"
        assert name in commands, f"{path}: `tidings {name}` is not a command"
        for option in (a for a in args if a.startswith("-")):
            assert option in commands[name], f"{path}: tidings {name} {option}"
