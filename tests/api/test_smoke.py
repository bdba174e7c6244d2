from starlette.testclient import TestClient

from tests.support import Caller


def test_create_room_the_guide_way(client: TestClient, account: Caller) -> None:
    response = client.post(
        "/beta/meetings/rooms",
        headers={**account.basic, "content-type": "application/json"},
        content=b'{"display_name":"New Meeting Room"}',
    )
    assert response.status_code == 201, response.text
    assert response.json()["display_name"] == "New Meeting Room"
    got = client.get(f"/v1/meetings/rooms/{response.json()['id']}", headers=account.bearer())
    assert got.status_code == 200, got.text
    assert got.json() == response.json()
