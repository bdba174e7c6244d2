import time

from meetd.store import accounts, migrations, rooms
from meetd.store.database import open_database
from meetd.store.seed import seed_rooms


def test_seeded_rooms_are_listed_and_counted(database_url: str) -> None:
    database = open_database(database_url)
    try:
        database.write_blocking(migrations.upgrade)
        account = database.write_blocking(
            lambda c: accounts.create_account(
                c, name="seed", api_key="seedkey", api_secret="s", now_ms=int(time.time() * 1000)
            )
        )
    finally:
        database.close()
    app_id = account.default_application_id
    assert seed_rooms(database_url, app_id, 45) == 45

    database = open_database(database_url)
    try:
        page = database.read_blocking(lambda c: rooms.list_rooms(c, app_id, page_size=100))
    finally:
        database.close()
    assert page.total == 45
    assert len(page.rooms) == 45
    assert len({room.meeting_code for room in page.rooms}) == 45
    assert all(room.is_available and room.type == "long_term" for room in page.rooms)
