"""Running it for months: JSON logs, the capped aria2.log, purge and daily retention."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from manager.store import Store
from tests.runner import AriabotRun, wait_until
from tests.swarm import Swarm

MiB = 1024 * 1024


def cli(run: AriabotRun, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "supervisor", *args], env=run.env,
                          capture_output=True, text=True, timeout=120, check=False)


def listing(run: AriabotRun) -> list[dict]:
    result = cli(run, "list", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_json_logs_capped_aria2_log_and_purge(tmp_path: Path, swarm: Swarm) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    with (data_dir / "aria2.log").open("wb") as old_log:  # left by earlier runs: 11 MiB
        old_log.truncate(11 * MiB)
    run = AriabotRun(data_dir, {"ARIABOT_SEED_TIME": "0"}, args=("--log-format", "json"))
    run.start()
    try:
        info = run.wait_ready()
        assert (data_dir / "aria2.log.1").stat().st_size == 11 * MiB
        assert (data_dir / "aria2.log").stat().st_size < MiB

        torrent = swarm.add("ops-album", [1 * MiB, 512 * 1024], seed=21)
        added = cli(run, "add", torrent.magnet, "--wait")
        assert added.returncode == 0, added.stderr
        wait_until(lambda: listing(run)[0]["state"] == "complete", 30, "seeding to end")

        purged = cli(run, "purge", "--older-than", "0")
        assert purged.returncode == 0, purged.stderr
        assert purged.stdout.strip() == ("removed 1 finished download(s) from the list "
                                         "(files kept)")
        assert listing(run) == []
        assert (data_dir / "downloads" / "torrents" / "0" / "ops-album").is_dir()
        refused = cli(run, "purge", "--older-than", "-1")
        assert refused.returncode == 2 and "days must be from 0" in refused.stderr
    finally:
        run.stop()
    lines = run.output.splitlines()
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    messages = [e["message"] for e in entries if e["logger"] == "ariabot.downloads"]
    assert messages[0] == "download #1 added in chat 0 (metadata): 'ops-album'"
    assert "download #1 downloading -> seeding: 'ops-album'" in messages
    assert messages[-1].endswith("-> complete: 'ops-album'")
    assert len(messages) == len(set(messages))  # one line per change, no progress noise
    assert any("aria2c STARTING -> RUNNING" in e["message"] for e in entries)
    assert info["rpc_secret"] not in run.output


def test_daily_retention_purges_old_finished_downloads_at_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)

    async def seed_store() -> None:
        store = Store(f"sqlite:///{data_dir / 'ariabot.db'}")
        await store.open()
        for number, (state, age) in enumerate([("complete", 40), ("cancelled", 40),
                                               ("complete", 2)]):
            record = await store.downloads.create(
                info_hash=f"{number:040x}", chat_id=9, user_id=1, name=f"old-{number}",
                source_kind="magnet", source=b"magnet:?xt=urn:btih:" + b"0" * 40,
                directory=str(data_dir / "downloads" / "torrents" / "9"), state=state)
            changed = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=age)
            table = store.database.tables.download
            await store.database.run(lambda r=record, c=changed, t=table: t.update(updated_at=c)
                                     .where(t.id == r.id).execute())
        await store.close()

    asyncio.run(seed_store())
    run = AriabotRun(data_dir, {"ARIABOT_RETENTION_DAYS": "30"})
    run.start()
    try:
        run.wait_ready()
        wait_until(lambda: [t["name"] for t in listing(run)] == ["old-2"], 15,
                   "the retention purge")
        wait_until(lambda: "retention: 2 finished download(s) older than 30 days" in run.output,
                   10, "the retention log line")
    finally:
        run.stop()
