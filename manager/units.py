"""Byte counts and durations in words, the same everywhere: the bot, the command line, the
doctor, refusals."""

from __future__ import annotations

__all__ = ["human_duration", "human_size"]

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def human_size(size: float) -> str:
    """Bytes in binary units: ``"512 B"``, ``"1.5 KiB"``, ``"700.0 MiB"``, ``"1.2 GiB"``.

    Whole bytes below 1 KiB, one decimal above; TiB is the largest unit. A negative count
    (a counter that went backwards) shows as ``"0 B"``.

    Parameters:
        size: a number of bytes.

    Returns:
        The size in words.
    """
    amount = float(max(0, size))
    for unit in _UNITS:
        if amount < 1024 or unit == _UNITS[-1]:
            return f"{int(amount)} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def human_duration(seconds: float) -> str:
    """A duration in its two largest units: ``"45s"``, ``"3m 05s"``, ``"2h 05m"``, ``"3d 04h"``."""
    total = max(0, int(seconds))
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days >= 100:
        return "over 99d"
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"
