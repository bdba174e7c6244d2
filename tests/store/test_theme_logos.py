"""Finalizing logos while another server process changes the same theme (PostgreSQL): the
change waits its turn, so the logo it replaces is the one the other process committed, and
no file is left that no theme uses and nothing deletes."""

from __future__ import annotations

import threading

import psycopg

from meetd.domain.themes import LOGO_COLUMNS
from meetd.store import migrations, themes
from meetd.store.database import open_database
from tests import support
from tests.store.conftest import new_application
from tests.store.test_room_inserts import new_theme


def test_setting_logos_waits_for_a_concurrent_theme_change() -> None:
    with support.postgres_schema() as url:
        db = open_database(url)
        try:
            db.write_blocking(migrations.upgrade)
            application_id = new_application(db)
            theme = new_theme(db, application_id)
            column = LOGO_COLUMNS["white"]
            db.write_blocking(
                lambda c: themes.set_logos(
                    c, application_id, theme.id, {"white": "logos/white/a.png"}
                )
            )
            answers: list[list[str]] = []
            with psycopg.connect(url) as other:  # another process, inside a theme change
                other.execute(
                    "SELECT 1 FROM applications WHERE id = %s FOR UPDATE", (application_id,)
                )
                other.execute(
                    f"UPDATE themes SET {column} = 'logos/white/b.png' WHERE id = %s", (theme.id,)
                )
                setting = threading.Thread(
                    target=lambda: answers.append(
                        db.write_blocking(
                            lambda c: themes.set_logos(
                                c, application_id, theme.id, {"white": "logos/white/c.png"}
                            )
                        )[1]
                    )
                )
                setting.start()
                setting.join(timeout=0.5)
                assert setting.is_alive()  # waiting for the other change
                other.commit()
            setting.join(timeout=10)
            assert answers == [["logos/white/b.png"]]  # not a.png: b.png would be left behind
        finally:
            db.close()
