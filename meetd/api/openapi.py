"""The OpenAPI document (placeholder until written in full)."""

from __future__ import annotations

from typing import Any


def openapi_document(public_url: str) -> dict[str, Any]:
    return {"openapi": "3.0.3", "info": {"title": "meetd", "version": "0.1.0"}, "paths": {}}
