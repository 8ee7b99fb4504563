"""A database URL fit to show: its password masked wherever it is written, the rest as is."""

from __future__ import annotations

import pytest

from manager import masked_url


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://ariabot:s3cret@127.0.0.1:5432/ariabot",
     "postgresql://ariabot:********@127.0.0.1:5432/ariabot"),
    ("postgresql://ariabot:p%40ss%2Fw@db.lan/ariabot", "postgresql://ariabot:********@db.lan/ariabot"),
    ("postgresql://ariabot@db.lan/ariabot?sslmode=require&password=s3cret",
     "postgresql://ariabot@db.lan/ariabot?sslmode=require&password=********"),
    ("postgres://a:b@[::1]:5432/c", "postgres://a:********@[::1]:5432/c"),
])
def test_a_password_is_masked_wherever_the_url_holds_it(url: str, shown: str) -> None:
    assert masked_url(url) == shown


@pytest.mark.parametrize("url", [
    "sqlite:////var/lib/ariabot/ariabot.db", "sqlite:///:memory:",
    "postgresql://ariabot@127.0.0.1:5432/ariabot", "postgresql:///ariabot?host=/run/pg",
    "postgresql://ariabot:@127.0.0.1/ariabot",
])
def test_a_url_without_a_password_is_shown_as_written(url: str) -> None:
    assert masked_url(url) == url
