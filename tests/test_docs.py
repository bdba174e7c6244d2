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


def test_readme_says_how_to_run_meetd_from_the_venv() -> None:
    """`make serve` installs meetd into .venv, not onto the PATH; the docs call `meetd …`."""
    assert "$(BIN)/meetd serve" in (ROOT / "Makefile").read_text()
    assert "BIN := $(VENV)/bin" in (ROOT / "Makefile").read_text()
    assert "VENV := .venv" in (ROOT / "Makefile").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "`.venv/bin/meetd …`" in readme and "`. .venv/bin/activate`" in readme


def test_the_sdk_walkthrough_works_on_a_data_dir_that_has_an_account() -> None:
    """It said "meetd serve … # note the API key", but serve prints a key only when it
    creates the first account; after `make serve` it prints none."""
    api = (DOCS / "api.md").read_text()
    walkthrough = api.split("On one machine, from nothing:", 1)[1].split("```", 2)[1]
    assert "note the API key" not in walkthrough
    assert "meetd accounts create" in walkthrough and "first start" in walkthrough
