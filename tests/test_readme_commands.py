"""Every `recsage …` line in the README parses as written: the command exists and its options and
arguments are accepted (checked with click's own parser; nothing runs)."""

import re
import shlex
from pathlib import Path

import click
import typer

from recsage.cli.main import app

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_commands() -> list[str]:
    lines, in_code, pending = [], False, ""
    for line in README.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
            continue
        if line.rstrip().endswith("\\"):  # a command continued on the next line
            pending += line.rstrip()[:-1] + " "
            continue
        stripped = (pending + line).strip()
        pending = ""
        if in_code and stripped.startswith("recsage ") and "$(" not in stripped and "|" not in stripped.split("#")[0]:
            lines.append(stripped)
    return lines


def without_comment(line: str) -> list[str]:
    args = shlex.split(line, comments=True)
    return args[1:]  # drop "recsage"


def test_readme_has_commands():
    assert len(readme_commands()) >= 30


def test_every_readme_command_parses():
    root = typer.main.get_command(app)
    failures = []
    for line in readme_commands():
        args = without_comment(line)
        cmd, name = root, "recsage"
        while isinstance(cmd, click.Group) and args and not args[0].startswith("-"):
            sub = cmd.get_command(click.Context(cmd), args[0])
            if sub is None:
                failures.append(f"{line}: no command {args[0]!r}")
                break
            cmd, name, args = sub, f"{name} {args[0]}", args[1:]
        else:
            try:
                cmd.make_context(name, list(args))
            except click.ClickException as e:
                failures.append(f"{line}: {e.format_message()}")
    assert not failures, "\n".join(failures)
