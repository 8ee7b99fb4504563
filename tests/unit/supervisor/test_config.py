"""Settings: defaults, file, environment, and one clear line per bad value."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from supervisor.__main__ import main
from supervisor.config import FIELDS, ConfigError, Secret, load_settings

ROOT = Path(__file__).resolve().parents[3]


def test_shipped_file_lists_every_setting_with_its_default() -> None:
    shipped = tomllib.loads((ROOT / "conf" / "ariabot.toml").read_text())
    for spec in FIELDS:
        assert spec.key in shipped[spec.section], f"{spec.section}.{spec.key} missing"
        assert shipped[spec.section][spec.key] == spec.default, spec.key
    text = (ROOT / "conf" / "ariabot.toml").read_text()
    for spec in FIELDS:
        assert spec.env in text, f"{spec.env} is not documented"
    keys = {(s, k) for s, table in shipped.items() for k in table}
    assert keys == {(f.section, f.key) for f in FIELDS}


def test_shipped_file_loads_to_the_defaults() -> None:
    assert load_settings(ROOT / "conf" / "ariabot.toml", {}) == load_settings(None, {})


def test_defaults() -> None:
    settings = load_settings(None, {})
    assert settings.data_dir == Path("~/.local/share/ariabot").expanduser()
    assert settings.download_dir == settings.data_dir / "downloads"
    assert settings.max_concurrent == 3
    assert settings.api_url == "https://api.telegram.org"
    assert settings.local_mode


def test_environment_wins_over_file(tmp_path: Path) -> None:
    config = tmp_path / "ariabot.toml"
    config.write_text('[aria2]\nmax_concurrent = 4\n[paths]\ndata_dir = "/srv/a"\n')
    settings = load_settings(config, {"ARIABOT_MAX_CONCURRENT": "7"})
    assert settings.max_concurrent == 7
    assert settings.data_dir == Path("/srv/a")
    assert settings.download_dir == Path("/srv/a/downloads")


def test_config_path_from_environment(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[telegram]\nallowed_users = [5, 6, 5]\n")
    assert load_settings(None, {"ARIABOT_CONFIG": str(config)}).allowed_users == (5, 6)


def test_allowed_users_from_environment() -> None:
    settings = load_settings(None, {"ARIABOT_ALLOWED_USERS": " 1, 22 ,333,"})
    assert settings.allowed_users == (1, 22, 333)


@pytest.mark.parametrize(("env", "needle"), [
    ({"ARIABOT_MAX_CONCURRENT": "x"}, "ARIABOT_MAX_CONCURRENT"),
    ({"ARIABOT_MAX_CONCURRENT": "51"}, "from 1 to 50"),
    ({"ARIABOT_PROGRESS_INTERVAL": "0.5"}, "ARIABOT_PROGRESS_INTERVAL"),
    ({"ARIABOT_ENABLE_DHT": "maybe"}, "true or false"),
    ({"ARIABOT_LISTEN_PORT": "80"}, "ARIABOT_LISTEN_PORT"),
    ({"ARIABOT_FILE_ALLOCATION": "fast"}, "none, falloc"),
    ({"ARIABOT_DATA_DIR": ""}, "must not be empty"),
    ({"ARIABOT_TELEGRAM_API_URL": "http://x/?a=1"}, "bare server root"),
    ({"ARIABOT_BACKOFF_INITIAL": "5", "ARIABOT_BACKOFF_MAX": "1"}, "backoff_max"),
    ({"ARIABOT_DATABASE_URL": "mysql://u:p@db/ariabot"}, "ARIABOT_DATABASE_URL.*postgresql://"),
])
def test_bad_values_name_the_key(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        load_settings(None, env)


@pytest.mark.parametrize("url", ["sqlite:////var/lib/ariabot/ariabot.db",
                                 "postgresql://ariabot:p%40ss@127.0.0.1:5432/ariabot",
                                 "postgres://ariabot@db.example:5432/ariabot"])
def test_both_engines_urls_are_accepted(url: str) -> None:
    assert load_settings(None, {"ARIABOT_DATABASE_URL": url}).database_url == url


@pytest.mark.parametrize("remote", ["gdrive:ariabot", "gdrive:", "my nas.2:Media/ariabot",
                                    "b2-x_y:bucket/a b", "/srv/mirror", "sftp:/home/me"])
def test_rclone_destinations_are_accepted(remote: str) -> None:
    settings = load_settings(None, {"ARIABOT_RCLONE_REMOTE": f"  {remote} "})
    assert settings.remote == remote and settings.mirroring


@pytest.mark.parametrize(("remote", "shown", "variables"), [
    (":webdav,url='http://127.0.0.1:9/',user=u,pass=S3CRET:up", ":webdav:up",
     {"RCLONE_WEBDAV_URL": "http://127.0.0.1:9/", "RCLONE_WEBDAV_USER": "u",
      "RCLONE_WEBDAV_PASS": "S3CRET"}),
    ("nas,pass=\"it\"\"s,me\",skip-links:Media", "nas:Media",
     {"RCLONE_CONFIG_NAS_PASS": 'it"s,me', "RCLONE_CONFIG_NAS_SKIP_LINKS": "true"}),
    (":local:/srv/mirror", ":local:/srv/mirror", {}),
])
def test_a_connection_string_keeps_its_parameters_out_of_the_remote(
    remote: str, shown: str, variables: dict[str, str]
) -> None:
    settings = load_settings(None, {"ARIABOT_RCLONE_REMOTE": remote})
    assert settings.remote == shown and settings.mirroring
    assert settings.rclone_environment() == variables
    assert [s.reveal() for s in settings.remote_secrets] == [
        value for name, value in variables.items() if name.endswith("_PASS")]
    assert "S3CRET" not in repr(settings) and "it\"s" not in repr(settings)


@pytest.mark.parametrize(("remote", "needle"), [
    ("bad name!:x", "the part before ':' must be the name of a remote"),
    ("-flag:x", "the part before ':' must be the name of a remote"),
    ("trailing :x", "the part before ':' must be the name of a remote"),
    (":we-b:x", "must be an rclone backend such as webdav"),
    ("nas,pass='open:x", "lacks its closing quote"),
    ("nas,=v:x", "must be key=value"),
    ("gdrive", "must be an rclone destination, remote:path"),
    ("relative/folder", "must be an rclone destination, remote:path"),
    ("gdrive:a/../../b", "must not contain '..'"),
    ("/srv/../etc", "must not contain '..'"),
])
def test_bad_rclone_destinations_are_one_line_naming_the_key(remote: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=rf"^ARIABOT_RCLONE_REMOTE: .*{re.escape(needle)}"):
        load_settings(None, {"ARIABOT_RCLONE_REMOTE": remote})


def test_mirroring_is_off_by_default_and_bad_mirror_values_name_the_key() -> None:
    settings = load_settings(None, {})
    assert not settings.mirroring and settings.mode == "copy" and not settings.auto
    for env, needle in [({"ARIABOT_MIRROR_MODE": "sync"}, "copy, move"),
                        ({"ARIABOT_MIRROR_BWLIMIT": "fast"}, "rate such as 10M"),
                        ({"ARIABOT_MIRROR_ATTEMPTS": "0"}, "ARIABOT_MIRROR_ATTEMPTS")]:
        with pytest.raises(ConfigError, match=needle):
            load_settings(None, env)


@pytest.mark.parametrize("variable", ["ARIABOT_DATA_DIR", "ARIABOT_DOWNLOAD_DIR", "ARIABOT_CONFIG"])
@pytest.mark.parametrize("value", ["~nosuchuser", "~nosuchuser/ariabot"])
def test_home_of_an_unknown_user_is_a_config_error_naming_the_key(
    variable: str, value: str
) -> None:
    # Path.expanduser raises RuntimeError for an unknown user: that was a traceback at start.
    with pytest.raises(ConfigError, match=rf"^{variable}: cannot expand ~nosuchuser: "):
        load_settings(None, {variable: value})


def test_home_that_cannot_be_found_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOME", raising=False)
    monkeypatch.setattr("pwd.getpwuid", _no_such_uid)
    with pytest.raises(ConfigError, match=r"^ARIABOT_DATA_DIR: cannot expand ~: "):
        load_settings(None, {"ARIABOT_DATA_DIR": "~/state"})


def _no_such_uid(uid: int) -> None:
    raise KeyError(uid)


def test_unknown_key_in_file_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[aria2]\nmax_concurent = 4\n")
    with pytest.raises(ConfigError, match=r"unknown key aria2\.max_concurent"):
        load_settings(config, {})


def test_damaged_file_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[aria2\n")
    with pytest.raises(ConfigError, match=r"c\.toml"):
        load_settings(config, {})


def test_token_is_never_shown() -> None:
    token = "123456:" + "Z" * 35
    settings = load_settings(None, {"ARIABOT_TELEGRAM_TOKEN": token})
    assert settings.token.reveal() == token
    assert token not in repr(settings) and token not in str(settings.token)
    assert not settings.local_mode
    with pytest.raises(ConfigError) as caught:
        load_settings(None, {"ARIABOT_TELEGRAM_TOKEN": token + "!"})
    assert token not in str(caught.value)
    assert not Secret("")


@pytest.mark.parametrize("token", [
    "123:abc",  # digits:letters, and still not a token: far too short
    "123456:" + "A" * 29,
    "\u0661\u0662\u0663:" + "A" * 35,  # Arabic-Indic digits pass str.isdigit()
    "123456:" + "\u00e9" * 35,  # letters, but not the ASCII ones BotFather uses
    "123456:" + "A" * 34 + "!",
    "abc:" + "A" * 35,
])
def test_token_shape_error_states_the_real_rule(token: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, {"ARIABOT_TELEGRAM_TOKEN": token})
    message = str(caught.value)
    assert "ARIABOT_TELEGRAM_TOKEN" in message and token not in message
    assert ("the bot's number, a colon, then at least 30 (BotFather gives 35) of A-Z a-z 0-9 "
            "_ -") in message


def test_tokens_of_botfathers_shape_are_accepted() -> None:
    for token in ("123456:" + "A" * 35, "7012345678:AAH-9_zyx" + "b" * 26, "1:" + "0" * 30):
        assert load_settings(None, {"ARIABOT_TELEGRAM_TOKEN": token}).token.reveal() == token


def test_main_exits_2_with_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["--config", str(tmp_path / "missing.toml"), "run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.toml" in err[0]


def test_main_exits_2_with_one_line_for_an_unknown_users_home(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARIABOT_DATA_DIR", "~nosuchuser")
    assert main(["run"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("ariabot: configuration error: ARIABOT_DATA_DIR: cannot expand")
