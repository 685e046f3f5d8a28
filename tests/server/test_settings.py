"""Settings: defaults, parsing from TELEMED_* variables, and start-up failures that name the variable."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from server.errors import SettingsError
from server.settings import Secret, Settings, describe

GOOD_SECRET = "s" * 40


def test_defaults_are_embedded() -> None:
    """With no environment, the server runs on SQLite in ./var with an in-process bus."""
    settings = Settings.load(environ={})
    assert settings.port == 8080
    assert settings.redis_url is None
    assert settings.is_embedded_database
    assert settings.database_url == f"sqlite+aiosqlite:///{(Path('var') / 'telemed.db').resolve()}"
    assert settings.default_locale == "zh-CN"


def test_reads_environment_and_flags_override_it(tmp_path: Path) -> None:
    """Each TELEMED_ variable set here is read into its setting (host, data directory, a shared database, Redis, the JWT
    secret and its predecessors, secure cookies, ICE servers as a list, the default language and time zone, the token
    lifetime), and a command-line flag (the port) wins over the environment."""
    env = {
        "TELEMED_PORT": "9000",
        "TELEMED_HOST": "0.0.0.0",
        "TELEMED_DATA_DIR": str(tmp_path),
        "TELEMED_DATABASE_URL": "postgresql+asyncpg://u@db/telemed",
        "TELEMED_REDIS_URL": "redis://127.0.0.1:6379/0",
        "TELEMED_JWT_SECRET": GOOD_SECRET,
        "TELEMED_JWT_PREVIOUS_SECRETS": f"{'a' * 32}, {'b' * 32}",
        "TELEMED_COOKIE_SECURE": "yes",
        "TELEMED_ICE_SERVERS": "stun:stun.example.org:3478,turn:turn.example.org",
        "TELEMED_DEFAULT_LOCALE": "en",
        "TELEMED_DEFAULT_TIMEZONE": "Europe/London",
        "TELEMED_ACCESS_TOKEN_TTL": "600",
    }
    settings = Settings.load(environ=env, port=0)
    assert settings.port == 0  # the flag wins
    assert settings.host == "0.0.0.0"
    assert settings.data_dir == tmp_path
    assert not settings.is_embedded_database
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.jwt_secret is not None and settings.jwt_secret.reveal() == GOOD_SECRET
    assert [secret.reveal() for secret in settings.jwt_previous_secrets] == ["a" * 32, "b" * 32]
    assert settings.cookie_secure is True
    assert settings.ice_servers == ({"urls": "stun:stun.example.org:3478"}, {"urls": "turn:turn.example.org"})
    assert settings.default_locale == "en"
    assert settings.default_timezone == "Europe/London"
    assert settings.access_token_ttl == 600


def test_metrics_are_for_loopback_by_default() -> None:
    """Guards the default fence of GET /metrics: loopback only, no token; a list of networks replaces it."""
    assert [str(n) for n in Settings.load(environ={}).metrics_networks] == ["127.0.0.1/32", "::1/128"]
    assert Settings.load(environ={}).metrics_token is None
    chosen = Settings.load(environ={"TELEMED_METRICS_NETWORKS": "10.9.0.0/16, 192.0.2.7"}).metrics_networks
    assert [str(n) for n in chosen] == ["10.9.0.0/16", "192.0.2.7/32"]


def test_ice_servers_as_json_keep_turn_credentials() -> None:
    """ICE servers given as JSON are kept whole, a TURN server's username and credential with it, for browsers to use
    the relay."""
    raw = '[{"urls": ["turn:t.example.org"], "username": "u", "credential": "c"}]'
    settings = Settings.load(environ={"TELEMED_ICE_SERVERS": raw})
    assert settings.ice_servers == ({"urls": ["turn:t.example.org"], "username": "u", "credential": "c"},)


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("TELEMED_PORT", "eighty", "TELEMED_PORT"),
        ("TELEMED_PORT", "70000", "0 to 65535"),
        ("TELEMED_DATABASE_URL", "mysql://x", "sqlite+aiosqlite://"),
        ("TELEMED_REDIS_URL", "http://x", "redis://"),
        ("TELEMED_JWT_SECRET", "short", "at least 32 bytes"),
        ("TELEMED_JWT_PREVIOUS_SECRETS", "short", "at least 32 bytes"),
        ("TELEMED_COOKIE_SECURE", "maybe", "true or false"),
        ("TELEMED_ICE_SERVERS", "http://stun", "is not a stun:"),
        ("TELEMED_ICE_SERVERS", "[{\"x\": 1}]", "'urls'"),
        ("TELEMED_ICE_SERVERS", "[not json", "TELEMED_ICE_SERVERS"),
        ("TELEMED_DEFAULT_LOCALE", "fr", "zh-CN, en"),
        ("TELEMED_DEFAULT_TIMEZONE", "Mars/Olympus_Mons", "IANA time zone"),
        ("TELEMED_DEFAULT_TIMEZONE", "../etc/passwd", "IANA time zone"),
        ("TELEMED_LOG_LEVEL", "LOUD", "DEBUG"),
        ("TELEMED_LOG_FORMAT", "xml", "text or json"),
        ("TELEMED_ACCESS_TOKEN_TTL", "-5", "positive"),
        ("TELEMED_ROOM_MAX_PARTICIPANTS", "0", "positive"),
        ("TELEMED_METRICS_NETWORKS", "10.0.0.0/33", "TELEMED_METRICS_NETWORKS"),
        ("TELEMED_METRICS_TOKEN", "short", "at least 32 bytes"),
    ],
)
def test_malformed_setting_names_the_variable(variable: str, value: str, says: str) -> None:
    """Each row: a malformed value of one setting is refused with a message that starts with the variable's name and
    says what is wanted (a number in range, a URL scheme, a length, a form, the choices); a path given as the time zone
    is refused like an unknown zone."""
    with pytest.raises(SettingsError) as caught:
        Settings.load(environ={variable: value})
    assert caught.value.message.startswith(f"{variable}:")
    assert says in caught.value.message


def test_secret_values_never_show() -> None:
    """A bad secret is not echoed in the error, and a good one is hidden from repr (and so from logs)."""
    with pytest.raises(SettingsError) as caught:
        Settings.load(environ={"TELEMED_JWT_SECRET": "hunter2-short"})
    assert "hunter2" not in caught.value.message
    with pytest.raises(SettingsError) as caught:
        Settings.load(environ={"TELEMED_METRICS_TOKEN": "hunter2-short"})
    assert "hunter2" not in caught.value.message
    settings = Settings.load(environ={"TELEMED_JWT_SECRET": GOOD_SECRET, "TELEMED_METRICS_TOKEN": GOOD_SECRET})
    assert GOOD_SECRET not in repr(settings)
    assert repr(Secret("x")) == "Secret('**********')"


def test_a_secret_shows_a_mask_however_it_is_printed(caplog: pytest.LogCaptureFixture) -> None:
    """str(), format(), '%s', '%r', f-strings and log lines all show a mask; only reveal() gives the value."""
    secret = Settings.load(environ={"TELEMED_JWT_SECRET": GOOD_SECRET}).jwt_secret
    assert secret is not None
    # the old-style formats are the point here: logging and older code still use them
    shown = [str(secret), repr(secret), format(secret), format(secret, ">20"), f"{secret}", f"{secret!s}",
             f"{secret!r}", str((secret,)), str({"k": secret}),
             "%s" % secret, "%r" % (secret,), "{}".format(secret)]  # noqa: UP031, UP032
    for text in shown:
        assert "s" * 8 not in text, text
        assert "*" * 10 in text, text
    with caplog.at_level(logging.INFO):
        logging.getLogger("telemed.test").info("signing with %s (%r)", secret, secret)
        logging.getLogger("telemed.test").info(f"signing with {secret}")
    assert GOOD_SECRET not in caplog.text and "*" * 10 in caplog.text
    assert secret.reveal() == GOOD_SECRET


def test_a_secret_is_not_a_string_that_leaks_by_joining() -> None:
    """Concatenating or encoding a secret fails loudly instead of quietly putting it into a message."""
    secret = Secret(GOOD_SECRET)
    with pytest.raises(TypeError):
        "key: " + secret  # type: ignore[operator]  # noqa: B018
    assert not hasattr(secret, "encode")
    assert secret == Secret(GOOD_SECRET) and secret != Secret("t" * 40) and secret != GOOD_SECRET
    assert hash(secret) == hash(Secret(GOOD_SECRET))


def test_settings_are_frozen() -> None:
    """Loaded settings cannot be changed: assigning to one raises."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings.load(environ={}).port = 1  # type: ignore[misc]


def test_every_setting_is_documented() -> None:
    """Every setting has a row for --help and the README, named as its TELEMED_ variable and described."""
    rows = describe()
    assert len(rows) == len(dataclasses.fields(Settings))
    assert all(name.startswith("TELEMED_") and doc for name, _, doc in rows)


def test_readme_documents_every_setting() -> None:
    """The configuration table in README.md stays true to the code."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for name, _, doc in describe():
        assert f"| `{name}` |" in readme, f"README.md lacks {name}"
        assert doc in readme, f"README.md describes {name} differently from the code"


def test_ice_transport_policy_is_all_or_relay() -> None:
    """Browsers get ``relay`` only when asked (TURN only: a locked-down network, or the deploy test); anything
    but ``all`` or ``relay`` stops the start naming the variable, since a browser would reject it mid-call."""
    assert Settings.load(environ={}).ice_transport_policy == "all"
    assert Settings.load(environ={"TELEMED_ICE_TRANSPORT_POLICY": "Relay"}).ice_transport_policy == "relay"
    with pytest.raises(SettingsError) as caught:
        Settings.load(environ={"TELEMED_ICE_TRANSPORT_POLICY": "turn-only"})
    assert "TELEMED_ICE_TRANSPORT_POLICY" in str(caught.value)
