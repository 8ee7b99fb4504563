"""Wall-clock time as the store keeps it: naive UTC."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["utcnow"]


def utcnow() -> datetime:
    """Now, in UTC, without a time zone (the store's timestamps are naive UTC)."""
    return datetime.now(UTC).replace(tzinfo=None)
