"""The bot's part ledger (:class:`bot.delivery.PartLedger`) over a bare store, for tests and
benchmarks that send files without a whole manager."""

from __future__ import annotations

from manager import Store

__all__ = ["StoreLedger"]


class StoreLedger:
    """What the manager gives the bot as its ledger: the store's sent parts."""

    def __init__(self, store: Store) -> None:
        self.sent_parts = store.sent_parts.confirmed
        self.record_sent_part = store.sent_parts.record
