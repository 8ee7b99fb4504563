"""The promises machine's I4 (no two listed downloads share a path) follows ariabot's
ownership rule (manager/downloads/contents.py ``owns_its_name``): a magnet before its metadata
carries its link's ``dn=`` and owns nothing, whether it waits, is queued or is paused; the soak once
reported such a paused magnet next to the finished download that owns the name (seed
1689892772), though ariabot refused it by name once its metadata arrived.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.promises.machine import PromisesMachine

FOLDER = "/srv/downloads/torrents/0"


def _row(number: int, state: str, kind: str, total: int) -> dict[str, Any]:
    return {"id": number, "chat_id": 0, "directory": FOLDER, "name": "album", "state": state,
            "source_kind": kind, "total_bytes": total}


def _check(*rows: dict[str, Any]) -> None:
    machine = object.__new__(PromisesMachine)  # I4 reads only the rows it is given
    machine._i4_no_shared_path({row["id"]: row for row in rows})


@pytest.mark.parametrize("state", ["metadata", "queued", "paused"])
def test_a_magnet_before_its_metadata_shares_no_path(state: str) -> None:
    _check(_row(1, "complete", "magnet", 16384), _row(3, state, "magnet", 0))


@pytest.mark.parametrize(("state", "kind", "total"), [
    ("paused", "magnet", 18432),  # its metadata named it
    ("downloading", "magnet", 0),  # it writes under that name
    ("paused", "torrent", 18432),
])
def test_a_named_download_shares_the_path(state: str, kind: str, total: int) -> None:
    with pytest.raises(AssertionError, match="I4: #1 and #3 are listed with the same path"):
        _check(_row(1, "complete", "magnet", 16384), _row(3, state, kind, total))
