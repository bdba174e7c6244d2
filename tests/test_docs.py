"""The docs stay true: every setting, command and linked page exists where the docs say."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from meetd.cli import main
from meetd.settings import ENVIRONMENT_VARIABLES

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        path = (*prefix, name)
        if isinstance(command, click.Group):
            found += commands(command, path)
        else:
            found.append(path)
    return found


@pytest.mark.parametrize("variable", ENVIRONMENT_VARIABLES)
def test_every_setting_is_documented(variable: str) -> None:
    assert f"`{variable}`" in (DOCS / "configuration.md").read_text()


def test_documented_settings_exist() -> None:
    text = (DOCS / "configuration.md").read_text()
    documented = set(re.findall(r"`(MEETD_[A-Z_]+)`", text))
    assert documented <= set(ENVIRONMENT_VARIABLES)


@pytest.mark.parametrize("command", commands(main), ids=" ".join)
def test_every_command_is_documented(command: tuple[str, ...]) -> None:
    assert f"meetd {' '.join(command)}" in (DOCS / "running.md").read_text()


def test_readme_links_point_at_existing_pages() -> None:
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\((docs/[^)]+)\)", readme)
    assert links
    for link in links:
        assert (ROOT / link).is_file(), link


def test_readme_has_the_two_quick_start_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make serve" in readme and "make test" in readme


def test_readme_quick_start_is_exactly_the_two_commands() -> None:
    """The operations contract: a fresh clone needs `make serve` and `make test`, no more."""
    readme = (ROOT / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1]
    block = quick_start.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#", 1)[0].strip() for line in block.splitlines()]
    assert commands == ["make serve", "make test"]
