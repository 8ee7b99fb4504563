"""The Mini App's check of Telegram's initData: a known answer, and every way to fail it."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from init_data_py import sign

from web.miniapp import InitDataCheck, NotSigned, Signed

TOKEN = "42:TEST"
ISSUED = 1650385342
AIOGRAM = ("auth_date=1650385342&user=%7B%22id%22%3A42%2C%22first_name%22%3A%22Test%22%7D"
           "&query_id=test&hash=46d2ea5e32911ec8d30999b56247654460c0d20949b6277af519e76271182803")
"""aiogram's published test vector (tests/test_utils/test_web_app.py), signed with TOKEN."""


def check(max_age: float = 86400, now: float = ISSUED + 60,
          started: float = ISSUED - 60) -> InitDataCheck:
    """A check made (the process started) at ``started``, asked at ``now``."""
    clock = [started]
    checker = InitDataCheck(TOKEN, max_age, clock=lambda: clock[0])
    clock[0] = now
    return checker


def signed(**fields: str) -> str:
    return sign({"user": '{"id":7,"first_name":"Ann"}', **fields}, TOKEN, auth_date=ISSUED)


def test_the_published_test_vector_is_accepted() -> None:
    assert check().check(f"tma {AIOGRAM}") == Signed(user_id=42, first_name="Test", chat_id=42)


@pytest.mark.parametrize("tampered", [
    AIOGRAM.replace("%22id%22%3A42", "%22id%22%3A43"),       # another user
    AIOGRAM.replace("auth_date=1650385342", "auth_date=1650385343"),  # another time
    AIOGRAM.replace("query_id=test", "query_id=tesT"),
    AIOGRAM + "&start_param=c-1001",                          # a field added
    AIOGRAM.replace("&hash=46d2", "&hash=56d2"),              # the hash itself
])
def test_a_tampered_field_is_refused(tampered: str) -> None:
    with pytest.raises(NotSigned, match="not from Telegram"):
        check().check(f"tma {tampered}")


@pytest.mark.parametrize("header", [
    "tma " + AIOGRAM.split("&hash=", maxsplit=1)[0],        # no hash
    "tma " + AIOGRAM.replace("46d2ea5e", "46d2éa5e"),         # a non-ASCII hash
    "Bearer " + AIOGRAM,                                      # another scheme
    "tma " + AIOGRAM + "&hash=46d2",                          # the hash twice
    "tma " + "a" * 9000,                                      # longer than Telegram's
])
def test_a_malformed_header_is_refused(header: str) -> None:
    with pytest.raises(NotSigned, match="not from Telegram"):
        check().check(header)


@pytest.mark.parametrize("header", [None, "", "tma ", "TMA"])
def test_no_header_says_the_page_is_for_telegram(header: str | None) -> None:
    with pytest.raises(NotSigned, match="only when opened from Telegram"):
        check().check(header)


def test_a_stale_auth_date_is_refused_and_a_fresh_one_accepted() -> None:
    with pytest.raises(NotSigned, match="too long ago"):
        check(max_age=3600, now=ISSUED + 3601).check(f"tma {AIOGRAM}")
    assert check(max_age=3600, now=ISSUED + 3599).check(f"tma {AIOGRAM}").user_id == 42


def test_another_bots_token_is_refused() -> None:
    other = InitDataCheck("43:TEST", 86400, clock=lambda: ISSUED)
    with pytest.raises(NotSigned, match="not from Telegram"):
        other.check(f"tma {AIOGRAM}")


def test_initdata_without_a_user_is_refused() -> None:
    data = sign({"query_id": "x"}, TOKEN, auth_date=ISSUED)
    with pytest.raises(NotSigned, match="who you are"):
        check().check(f"tma {data}")


def test_a_signed_group_parameter_names_the_chat_and_anything_else_is_the_private_chat() -> None:
    assert check().check(f"tma {signed(start_param='c-1001234')}") == Signed(7, "Ann", -1001234)
    assert check().check(f"tma {signed(start_param='c-1001234')}").private is False
    for other in ("x-100", "c", "c1.5", "c-" + "9" * 30, "c-100 "):
        assert check().check(f"tma {signed(start_param=other)}") == Signed(7, "Ann", 7), other


def test_fields_telegram_adds_later_do_not_break_the_check() -> None:
    data = signed(chat_instance="-8", signature=quote("abc"), brand_new_field="1")
    assert check().check(f"tma {data}").user_id == 7


def test_the_token_is_never_in_the_checks_repr() -> None:
    assert TOKEN not in repr(check()) and "TEST" not in repr(check())


def login(user: int = 7, **fields: str) -> str:
    return sign({"user": json.dumps({"id": user, "first_name": "Ann"}), "login": "n1",
                 **fields}, TOKEN, auth_date=ISSUED)


def test_a_login_link_is_redeemed_once_for_a_session_of_the_same_user_and_chat() -> None:
    checker = check(now=ISSUED + 30)
    session = checker.redeem(login(start_param="c-100"))
    assert checker.check(f"tma {session}") == Signed(7, "Ann", -100)
    assert "login" not in session
    with pytest.raises(NotSigned, match="already used"):
        checker.redeem(login(start_param="c-100"))
    # Another link (another nonce) of the same user still works.
    other = sign({"user": json.dumps({"id": 7, "first_name": "Ann"}), "login": "n2"}, TOKEN,
                 auth_date=ISSUED)
    assert checker.check(f"tma {checker.redeem(other)}") == Signed(7, "Ann", 7)


def test_a_login_link_is_not_a_session_and_a_session_is_not_a_login() -> None:
    with pytest.raises(NotSigned, match="works only once"):
        check().check(f"tma {login()}")
    with pytest.raises(NotSigned, match="not a login link"):
        check().redeem(AIOGRAM)


def test_a_login_link_made_before_a_restart_is_refused_used_or_not() -> None:
    with pytest.raises(NotSigned, match="from before ariabot restarted"):
        check(started=ISSUED + 1, now=ISSUED + 2).redeem(login())
    assert check(started=ISSUED, now=ISSUED + 2).redeem(login())  # the same second: fine


def test_a_login_link_past_ten_minutes_or_forged_is_refused() -> None:
    with pytest.raises(NotSigned, match="expired"):
        check(now=ISSUED + 601).redeem(login())
    forged = sign({"user": '{"id":7,"first_name":"Ann"}', "login": "n1"}, "43:X",
                  auth_date=ISSUED)
    with pytest.raises(NotSigned, match="not from Telegram"):
        check().redeem(forged)
