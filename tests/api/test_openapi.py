"""The OpenAPI document tells the truth: it lists exactly the routes meetd serves, and what
the server answers — to valid and to invalid requests — keeps to it (schemathesis).

Schemathesis only generates the cases and checks the answers here; the requests go through
Starlette's TestClient, so the app runs in-process with its lifespan, on the same real
databases as the rest of the suite. Both are fuzzed: they differ in what they refuse (NUL
characters, integers past 64 bits). Generation is derandomized, so a run sends the same
requests every time; set MEETD_FUZZ_EXAMPLES to search further locally.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import strategies as st
from schemathesis.specs.openapi import checks
from starlette.testclient import TestClient

from meetd.api.openapi import openapi_document
from meetd.api.routes import all_resources
from meetd.app import create_app
from meetd.clock import FakeClock
from meetd.domain.validation import MAX_SAFE_INTEGER
from meetd.settings import Settings
from tests import support

PUBLIC_URL = "https://meet.example.test"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
DOCUMENT = openapi_document(PUBLIC_URL)
RESPONSE_CHECKS = [
    schemathesis.checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]
# Invalid input (by the document) must answer 4xx: the document claims no more than is checked.
GENERATED_CHECKS = [*RESPONSE_CHECKS, checks.negative_data_rejection]
# Per operation and generation mode.
MAX_EXAMPLES = int(os.environ.get("MEETD_FUZZ_EXAMPLES", "30"))

# Inputs the fuzzing once turned into 500s or into bodies that broke the document; now 400s.
TOO_LARGE = str(MAX_SAFE_INTEGER + 1)
REFUSED = [
    pytest.param(f"?start_id={TOO_LARGE}", None, id="start_id past 2**53 - 1"),
    pytest.param(f"?end_id={2**63}", None, id="end_id past 64 bits"),
    pytest.param("", {"display_name": "a\u0000b"}, id="NUL in display_name"),
    pytest.param("", {"display_name": "x", "metadata": "\u0000"}, id="NUL in metadata"),
    pytest.param(
        "",
        {"display_name": "x", "type": "long_term", "expires_at": "9999-12-31T23:59:59-01:00"},
        id="expires_at past 9999 UTC",
    ),
]


def served_operations() -> set[tuple[str, str]]:
    """(path, method) for every route of the app; HEAD comes with GET and is left out."""
    return {
        (resource.path.replace(":path}", "}"), method.lower())
        for resource in all_resources()
        for method in resource.endpoints
        if method != "HEAD"
    }


def documented_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def test_every_route_is_documented_and_nothing_else() -> None:
    served = served_operations()
    documented = documented_operations(DOCUMENT)
    assert served - documented == set(), "served but not documented"
    assert documented - served == set(), "documented but not served"


def test_room_lifetimes_are_described_by_their_settings_not_a_fixed_figure() -> None:
    """MEETD_LONG_TERM_MIN_LEAD_SECONDS and MEETD_INSTANT_ROOM_TTL_SECONDS change what the
    server accepts; the document, built once for every server, names them."""
    schemas = DOCUMENT["components"]["schemas"]
    create = schemas["CreateRoom"]["properties"]["expires_at"]["description"]
    update = schemas["UpdateRoom"]["oneOf"][0]["properties"]["update_details"]["properties"][
        "expires_at"
    ]
    for description in (create, update["description"]):
        assert "MEETD_LONG_TERM_MIN_LEAD_SECONDS" in description
        assert "10 minutes ahead" not in description
    assert "MEETD_INSTANT_ROOM_TTL_SECONDS" in create


def test_the_app_serves_the_document_with_its_public_url(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {**DOCUMENT, "servers": [{"url": PUBLIC_URL}]}
    assert openapi_document("http://other:1")["servers"] == [{"url": "http://other:1"}]


OPERATIONS = [
    pytest.param(path, method, id=f"{method.upper()} {path}")
    for path, method in sorted(documented_operations(DOCUMENT))
]


@pytest.fixture
def fuzz_client(settings: Settings, clock: FakeClock) -> Iterator[TestClient]:
    """Like ``client``, but a server error comes back as a 500 for the checks to see."""
    app = create_app(settings, clock=clock, run_sweeper=False)
    with TestClient(app, base_url=PUBLIC_URL, raise_server_exceptions=False) as test_client:
        yield test_client


def send(client: TestClient, case: schemathesis.Case, headers: dict[str, str]) -> Any:
    """Send ``case`` as schemathesis would (``requests`` encodes it), but in-process."""
    kwargs = case.as_transport_kwargs(base_url=PUBLIC_URL)
    kwargs["headers"] = {**kwargs["headers"], **headers}
    prepared = requests.Request(**kwargs).prepare()
    return client.request(
        str(prepared.method),
        str(prepared.url),
        headers=dict(prepared.headers),
        content=prepared.body,
    )


def sample_rooms(client: TestClient, caller: support.Caller) -> list[str]:
    """An instant and a long-term room, so that room operations reach more than a 404."""
    bodies = [
        {"display_name": "instant"},
        {"display_name": "long", "type": "long_term", "expires_at": "2100-01-01T00:00:00Z"},
    ]
    ids = []
    for body in bodies:
        response = client.post("/v1/meetings/rooms", json=body, headers=caller.basic)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


def sample_theme(client: TestClient, caller: support.Caller) -> str:
    """A theme used by a room, so that theme operations reach more than a 404."""
    response = client.post(
        "/v1/meetings/themes", json={"main_color": "#fff", "brand_text": "b"}, headers=caller.basic
    )
    assert response.status_code == 201, response.text
    theme_id: str = response.json()["theme_id"]
    support.create_room(client, caller, theme_id=theme_id)
    return theme_id


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_the_server_keeps_to_the_document(
    fuzz_client: TestClient, clock: FakeClock, path: str, method: str
) -> None:
    caller = support.create_account(fuzz_client, clock)
    samples = {
        "room_id": sample_rooms(fuzz_client, caller),
        "theme_id": [sample_theme(fuzz_client, caller)],
    }
    schema = schemathesis.openapi.from_dict(DOCUMENT)
    operation = schema[path][method.upper()]

    item = DOCUMENT["paths"][path]
    takes_input = "parameters" in item or {"parameters", "requestBody"} & set(item[method])
    modes = [schemathesis.GenerationMode.POSITIVE]
    if takes_input:  # else there is nothing to make invalid
        modes.append(schemathesis.GenerationMode.NEGATIVE)
    for mode in modes:
        strategies = [operation.as_strategy(mode)]
        for name, ids in samples.items():
            if f"{{{name}}}" in path:
                strategies += [
                    operation.as_strategy(mode, path_parameters={name: sample}) for sample in ids
                ]

        @hypothesis.settings(
            max_examples=MAX_EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
            suppress_health_check=list(hypothesis.HealthCheck),
        )
        @hypothesis.given(case=st.one_of(strategies))
        def check(case: schemathesis.Case) -> None:
            response = send(fuzz_client, case, caller.basic)
            case.validate_response(response, checks=GENERATED_CHECKS, headers=caller.basic)

        check()


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_calls_without_credentials_answer_as_documented(
    fuzz_client: TestClient, clock: FakeClock, path: str, method: str
) -> None:
    """A 401 with WWW-Authenticate on the API; the public endpoints answer anyway."""
    caller = support.create_account(fuzz_client, clock)
    room_id = sample_rooms(fuzz_client, caller)[1]
    operation = schemathesis.openapi.from_dict(DOCUMENT)[path][method.upper()]
    names = re.findall(r"\{([^}]*)\}", path)
    case = operation.Case(
        path_parameters={name: room_id for name in names} or None,
        body={"display_name": "x"} if operation.body else schemathesis.core.NOT_SET,
    )
    response = send(fuzz_client, case, {})
    case.validate_response(response, checks=RESPONSE_CHECKS)
    documented = DOCUMENT["paths"][path][method]
    if documented.get("security") != []:
        assert response.status_code == 401
    elif documented["tags"] == ["service"]:
        assert response.status_code < 300
    else:  # the file endpoints: their own signatures guard them
        assert response.status_code in (400, 403, 404)


def test_wrong_methods_and_unknown_paths_answer_as_documented(fuzz_client: TestClient) -> None:
    documented = DOCUMENT["components"]["responses"]["MethodNotAllowed"]
    schema = documented["content"]["application/json"]["schema"]
    for path, item in DOCUMENT["paths"].items():
        allowed = {method.upper() for method in item if method in HTTP_METHODS}
        wrong = "PUT" if "PUT" not in allowed else "POST"
        response = fuzz_client.request(wrong, re.sub(r"\{[^}]*\}", "x", path))
        assert response.status_code == 405
        head = {"HEAD"} if "GET" in allowed else set()  # HEAD comes with GET
        assert set(response.headers["allow"].split(", ")) == allowed | head
        assert set(response.json()) == set(schema["required"])
        assert response.json()["name"] in schema["properties"]["name"]["enum"]
    for prefix in ("/v1/meetings", "/beta/meetings"):
        response = fuzz_client.get(f"{prefix}/nothing")
        assert (response.status_code, response.json()) == (
            404,
            {"message": f"Cannot GET {prefix}/nothing", "name": "NotFoundError", "status": 404},
        )


@pytest.mark.parametrize(("query", "body"), REFUSED)
def test_out_of_range_input_is_refused(
    fuzz_client: TestClient, clock: FakeClock, query: str, body: dict[str, str] | None
) -> None:
    caller = support.create_account(fuzz_client, clock)
    url = f"/v1/meetings/rooms{query}"
    if body is None:
        response = fuzz_client.get(url, headers=caller.basic)
    else:
        response = fuzz_client.post(url, json=body, headers=caller.basic)
    assert response.status_code == 400, response.text
    assert response.json()["name"] == "InputValidationError"
