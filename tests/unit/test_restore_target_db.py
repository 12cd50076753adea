"""`--db` and the target URL: one answer for the database a restore writes into."""

from __future__ import annotations

import pytest
from lastgood.backups.target_db import with_database
from lastgood.core.errors import RestoreError


def test_db_goes_into_the_url_path_keeping_hosts_and_options():
    assert with_database("mongodb://a:1,b:2/?replicaSet=rs", "app") == "mongodb://a:1,b:2/app?replicaSet=rs"
    assert with_database("mongodb://h:27017", "app") == "mongodb://h:27017/app"
    assert with_database("postgresql://u@h/", "app_restore") == "postgresql://u@h/app_restore"
    assert with_database("redis://h:6379", "2") == "redis://h:6379/2"
    assert with_database("mongodb://h/app", "app") == "mongodb://h/app"
    assert with_database("mongodb://h/app", None) == "mongodb://h/app"


@pytest.mark.parametrize(
    ("url", "db", "why"),
    [
        ("mongodb://h/app", "other", "names database 'app' but --db says 'other'"),
        ("redis://h:6379", "app", "a Redis database is a number"),
        ("https://x.upstash.io", "1", "--db does not apply"),
    ],
)
def test_conflicting_or_meaningless_db_is_refused(url, db, why):
    with pytest.raises(RestoreError, match=why):
        with_database(url, db)
