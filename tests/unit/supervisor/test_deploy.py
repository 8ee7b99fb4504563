"""deploy/ariabot.service: valid for systemd, hardened, and installed as the README says."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from supervisor import exits

ROOT = Path(__file__).resolve().parents[3]
UNIT = ROOT / "deploy" / "ariabot.service"
EXEC_START = "/opt/ariabot/.venv/bin/ariabot run"


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """A unit file as {section: {key: [values in order]}} (keys may repeat, as in systemd)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        assert not line.endswith("\\"), f"line {number}: keep each setting on one line"
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"line {number}: a setting before any [section]"
        key, sep, value = line.partition("=")
        assert sep, f"line {number}: not key=value: {line!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.fixture(scope="module")
def unit() -> dict[str, dict[str, list[str]]]:
    return parse_unit(UNIT.read_text(encoding="utf-8"))


def one(section: dict[str, list[str]], key: str) -> str:
    values = section.get(key)
    assert values, f"{key}= is missing"
    assert len(values) == 1, f"{key}= is set {len(values)} times"
    return values[0]


def environment(service: dict[str, list[str]]) -> dict[str, str]:
    pairs = [item.split("=", 1) for value in service["Environment"] for item in value.split()]
    return dict(pairs)


def test_runs_the_venv_ariabot_and_restarts_on_failure_only(unit) -> None:
    service = unit["Service"]
    assert one(service, "ExecStart") == EXEC_START
    assert one(service, "Restart") == "on-failure"
    # ariabot stops its aria2c itself (session saved); systemd signals ariabot alone.
    assert one(service, "KillMode") == "mixed"
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    assert "network-online.target" in one(unit["Unit"], "After")


def test_dedicated_user_state_directory_and_paths(unit) -> None:
    service = unit["Service"]
    assert one(service, "User") == "ariabot" or one(service, "DynamicUser") == "yes"
    assert one(service, "StateDirectory") == "ariabot"
    env = environment(service)
    assert env["ARIABOT_DATA_DIR"] == "/var/lib/ariabot"
    # The download dir is the one writable path outside the state directory.
    assert service["ReadWritePaths"] == [env["ARIABOT_DOWNLOAD_DIR"]]
    assert one(service, "EnvironmentFile") == "-/etc/ariabot/env"


def test_hardening(unit) -> None:
    service = unit["Service"]
    for key, value in {
        "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
        "PrivateTmp": "yes", "PrivateDevices": "yes", "CapabilityBoundingSet": "",
        "RestrictSUIDSGID": "yes", "ProtectKernelTunables": "yes",
        "ProtectControlGroups": "yes", "SystemCallArchitectures": "native",
    }.items():
        assert one(service, key) == value, key
    assert set(one(service, "RestrictAddressFamilies").split()) == {
        "AF_UNIX", "AF_INET", "AF_INET6"}
    assert "@system-service" in " ".join(service["SystemCallFilter"]).split()


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        # Without systemd's tool the static checks above still ran; say so in the report.
        pytest.skip("systemd-analyze is not installed (apt-get install systemd); the unit "
                    "was checked statically only")
    # verify checks that ExecStart exists: point it at this checkout's ariabot.
    ariabot = Path(sys.executable).with_name("ariabot")
    assert ariabot.exists(), "install the project (pip install -e .) for the ariabot script"
    copy = tmp_path / "ariabot.service"
    copy.write_text(UNIT.read_text().replace(EXEC_START, f"{ariabot} run"))
    result = subprocess.run([tool, "verify", str(copy)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    # Unknown or misspelt keys are only warnings, with exit code 0: refuse them too.
    assert result.stdout.strip() == "" and result.stderr.strip() == "", result.stderr
    security = subprocess.run(
        [tool, "security", "--offline=true", "--threshold=25", str(copy)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert security.returncode == 0, security.stdout[-2000:] + security.stderr


def test_readme_installs_what_the_unit_expects(unit) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Run it as a service", 1)[1].split("\n## ", 1)[0]
    env = environment(unit["Service"])
    for needed in (
        "useradd --system", "/opt/ariabot", "python3 -m venv /opt/ariabot/.venv",
        "deploy/ariabot.service", "/etc/systemd/system/ariabot.service",
        "/etc/ariabot/env", env["ARIABOT_DOWNLOAD_DIR"], "systemctl daemon-reload",
        "systemctl enable --now ariabot", "journalctl -u ariabot", "ariabot doctor",
    ):
        assert needed in section, f"the README's service section lacks {needed!r}"
    assert re.search(r"install -d .*-o ariabot .*" + re.escape(env["ARIABOT_DOWNLOAD_DIR"]),
                     section), "the README must create the download dir for the ariabot user"


def _table(text: str, heading: str) -> dict[int, list[str]]:
    """The rows of the first table after ``heading``, by exit code."""
    section = text.split(heading, 1)[1]
    rows: dict[int, list[str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0].isdigit():
            rows[int(cells[0])] = cells[1:]
        elif rows and not line.startswith("|"):
            break
    return rows


RUN_CODES = {exits.EXIT_OK, exits.EXIT_ERROR, exits.EXIT_USAGE}
"""The codes ``ariabot run`` can end with."""


def test_the_unit_restarts_exactly_the_exit_codes_that_may_pass(unit) -> None:
    service = unit["Service"]
    # on-failure: every non-zero exit is restarted, except those listed here.
    assert one(service, "Restart") == "on-failure"
    prevented = {int(code) for code in one(service, "RestartPreventExitStatus").split()}
    assert prevented == exits.NOT_RESTARTED
    assert exits.EXIT_ERROR not in prevented  # aria2c FATAL, Bot API unreachable: restarted
    assert exits.EXIT_USAGE in prevented  # a human must act
    assert one(service, "RestartSec") == "10s"


def test_readme_and_operations_tell_the_same_exit_codes_as_the_code(unit) -> None:
    readme = _table((ROOT / "README.md").read_text(encoding="utf-8"), "Exit codes of")
    operations = _table((ROOT / "docs" / "operations.md").read_text(encoding="utf-8"),
                        "## Exit codes")
    assert set(readme) == RUN_CODES
    assert set(operations) == RUN_CODES | {exits.EXIT_NOT_RUNNING, exits.EXIT_TIMEOUT}
    for code in RUN_CODES:
        for table in (readme, operations):
            systemd = table[code][-1]
            if code == exits.EXIT_OK:
                assert systemd == "leaves it stopped"
            elif code in exits.NOT_RESTARTED:
                assert systemd == "does not restart it"
            else:
                assert systemd == "restarts it after 10 s"
    for table in (readme, operations):
        assert "FATAL" in table[exits.EXIT_ERROR][0]
        assert "the token rejected by Telegram" in table[exits.EXIT_USAGE][0]
        assert "ARIABOT_TELEGRAM_API_URL" in table[exits.EXIT_USAGE][0]
