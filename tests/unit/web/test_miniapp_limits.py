"""The Mini App's per-user bounds: a burst, then the rate; streams per user."""

from __future__ import annotations

from web.miniapp import UserLimits


def test_a_burst_is_served_then_the_rate_and_users_do_not_share_a_bucket() -> None:
    now = [0.0]
    limits = UserLimits(rate=2.0, burst=3.0, clock=lambda: now[0])
    assert [limits.take(1) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limits.take(1) == 0.5  # one request earned back in half a second
    assert limits.take(2) == 0.0  # another user is not held up
    now[0] = 0.5
    assert limits.take(1) == 0.0
    assert limits.take(1) > 0


def test_a_users_streams_past_the_bound_end_the_oldest_and_ended_ones_free_their_place(
) -> None:
    limits, stopped = UserLimits(streams=2), []
    first = limits.open_stream(1, lambda: stopped.append("first"))
    limits.open_stream(1, lambda: stopped.append("second"))
    limits.open_stream(2, lambda: stopped.append("other user"))
    assert stopped == []
    third = limits.open_stream(1, lambda: stopped.append("third"))
    assert stopped == ["first"]
    limits.close_stream(1, first)  # the ended stream gives its ticket back: no effect
    limits.close_stream(1, third)
    limits.open_stream(1, lambda: stopped.append("fourth"))
    assert stopped == ["first"]  # "second" and "fourth" fit
