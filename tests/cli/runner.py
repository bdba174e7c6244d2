"""Running ``meetd`` commands in-process and checking what they print."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner, Result
from starlette.testclient import TestClient

from meetd.app import create_app
from meetd.cli import main
from meetd.settings import build_settings

ACCOUNT_KEYS = {"account_id", "api_key", "api_secret", "application_id", "signature_secret"}
APPLICATION_KEYS = {"application_id", "account_id", "signature_secret"}


def meetd(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


def one_json_object(result: Result) -> dict[str, Any]:
    """stdout holds exactly one JSON object and nothing else."""
    assert result.exit_code == 0, f"exit {result.exit_code}: {result.output}"
    assert result.stdout.count("\n") == 1 and result.stdout.endswith("\n"), result.stdout
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


def refused(result: Result, exit_code: int, *phrases: str) -> str:
    """Failed with this status and a one-line ``Error:`` naming the problem, no traceback."""
    assert result.exit_code == exit_code, f"exit {result.exit_code}: {result.output}"
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert result.stdout == ""
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr
    return result.stderr


def api_client(data_dir: Path, database_url: str) -> TestClient:
    settings = build_settings(
        {
            "data_dir": data_dir,
            "database_url": database_url,
            "secret_key": "test-secret-key-of-32-characters",
        },
        environ={},
    )
    return TestClient(create_app(settings, run_sweeper=False))


def create_room(client: TestClient, headers: dict[str, str]) -> httpx.Response:
    return client.post("/v1/meetings/rooms", headers=headers, json={"display_name": "cli"})
