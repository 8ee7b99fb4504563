"""PacingRules with a fake clock: who goes next, and when (no sleeps, no timing assertions)."""

from __future__ import annotations

import pytest

from bot.pacing import PaceLimits, PacingRules, Priority

A, B, GROUP = 1001, 1002, -100555
LIMITS = PaceLimits(chat_rate=1.0, chat_burst=3, group_per_window=19, group_window=61.0,
                    global_per_second=25)


def chats(released: list) -> list[object]:
    return [ticket.chat for ticket in released]


def test_a_quiet_chat_sends_its_burst_then_one_a_second() -> None:
    rules = PacingRules(LIMITS)
    for _ in range(5):
        rules.submit(A, Priority.REPLY, 0.0)
    assert len(rules.release(0.0)) == 3
    assert rules.release(0.5) == []
    assert rules.next_time(0.5) == pytest.approx(1.0)
    assert len(rules.release(1.0)) == 1
    assert len(rules.release(2.0)) == 1
    assert rules.next_time(2.0) is None


def test_news_go_before_replies_and_replies_before_edits() -> None:
    rules = PacingRules(PaceLimits(chat_burst=1))
    edit = rules.submit(A, Priority.EDIT, 0.0)
    reply = rules.submit(A, Priority.REPLY, 0.0)
    news = rules.submit(A, Priority.NEWS, 0.0)
    assert rules.release(0.0) == [news]
    assert rules.release(1.0) == [reply]
    assert rules.release(2.0) == [edit]


def test_same_priority_keeps_arrival_order() -> None:
    rules = PacingRules(PaceLimits(chat_burst=1))
    first, second = (rules.submit(A, Priority.REPLY, 0.0) for _ in range(2))
    assert rules.release(0.0) == [first]
    assert rules.release(1.0) == [second]


def test_a_flooding_chat_does_not_hold_another_chats_news() -> None:
    rules = PacingRules(LIMITS)
    for _ in range(50):
        rules.submit(A, Priority.REPLY, 0.0)
    rules.release(0.0)
    news = rules.submit(B, Priority.NEWS, 0.5)
    assert rules.release(0.5) == [news]


def test_a_group_gets_at_most_its_window() -> None:
    rules = PacingRules(PaceLimits(chat_rate=100.0, chat_burst=100, group_per_window=19,
                                   group_window=61.0))
    for _ in range(30):
        rules.submit(GROUP, Priority.REPLY, 0.0)
    sent = sum(len(rules.release(t / 10)) for t in range(600))  # 60 s
    assert sent == 19
    assert rules.next_time(60.0) == pytest.approx(61.0)
    assert rules.release(61.0) != []


def test_a_private_chat_is_not_held_to_the_group_window() -> None:
    rules = PacingRules(PaceLimits(chat_rate=100.0, chat_burst=100))
    for _ in range(30):
        rules.submit(A, Priority.REPLY, 0.0)
    assert sum(len(rules.release(t / 10)) for t in range(600)) == 30


def test_all_chats_together_keep_the_global_limit() -> None:
    rules = PacingRules(LIMITS)
    for chat in range(1, 41):
        rules.submit(chat, Priority.REPLY, 0.0)
    assert len(rules.release(0.0)) == 25
    assert rules.release(0.9) == []
    assert len(rules.release(1.0)) == 15


def test_the_global_budget_goes_to_news_first() -> None:
    rules = PacingRules(PaceLimits(global_per_second=2))
    rules.submit(1, Priority.EDIT, 0.0)
    rules.submit(2, Priority.REPLY, 0.0)
    news = rules.submit(3, Priority.NEWS, 0.0)
    released = rules.release(0.0)
    assert released[0] is news and chats(released) == [3, 2]


def test_a_429_after_recent_messages_pauses_only_that_chat() -> None:
    rules = PacingRules(LIMITS)
    rules.submit(A, Priority.REPLY, 0.0)
    rules.submit(A, Priority.REPLY, 0.0)
    assert len(rules.release(0.0)) == 2
    assert rules.rate_limited(A, 5.0, 0.1) is False
    rules.submit(A, Priority.NEWS, 0.2)
    other = rules.submit(B, Priority.REPLY, 0.2)
    assert rules.release(0.2) == [other]
    assert rules.release(5.0) == []
    assert chats(rules.release(5.1)) == [A]


def test_a_429_in_a_quiet_chat_pauses_every_chat() -> None:
    rules = PacingRules(LIMITS)
    rules.submit(A, Priority.REPLY, 0.0)
    rules.release(0.0)
    assert rules.rate_limited(A, 3.0, 0.1) is True  # A had sent nothing before: not its limit
    rules.submit(B, Priority.NEWS, 0.2)
    assert rules.release(0.2) == []
    assert rules.next_time(0.2) == pytest.approx(3.1)
    assert chats(rules.release(3.1)) == [B]


def test_a_cancelled_message_is_not_released_nor_counted() -> None:
    rules = PacingRules(PaceLimits(chat_burst=1))
    gone = rules.submit(A, Priority.NEWS, 0.0)
    kept = rules.submit(A, Priority.REPLY, 0.0)
    rules.cancel(gone)
    assert rules.pending(A) == 1
    assert rules.release(0.0) == [kept]


def test_priorities_survive_ptb_dropping_falsy_rate_limit_args() -> None:
    assert all(priority for priority in Priority)


def test_a_resent_message_keeps_its_place_in_line() -> None:
    rules = PacingRules(PaceLimits(chat_burst=1))
    first = rules.submit(A, Priority.REPLY, 0.0)
    assert rules.release(0.0) == [first]
    later = rules.submit(A, Priority.REPLY, 0.1)
    rules.rate_limited(A, 1.0, 0.2)
    again = rules.submit(A, Priority.REPLY, 0.2, first.seq)  # Telegram said 429 to ``first``
    assert rules.release(1.2) == [again]
    assert rules.release(2.2) == [later]
