"""Every malformed setting stops the program with one line naming it (SPEC §3), never a
traceback: checked for typos a person makes and for random values of every setting."""

from __future__ import annotations

import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from bot.cli import app
from core.settings import Settings, SettingsError, load_settings

SETTINGS = sorted(Settings.model_fields)


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("DATABASE_URL", "sqlite:/x.db", "is not a database URL"),
        ("DATABASE_URL", "sqlite://x.db", "must name a file, with three slashes"),
        ("DATABASE_URL", "postgresql://u@db.example.com:99999/winback", "port 99999"),
        ("DATABASE_URL", "mysql://u@h/db", "unsupported database (mysql)"),
        ("PUBLIC_BASE_URL", "winback.example.com", "http:// or https:// URL"),
        ("SLACK_API_URL", "https://", "with a host"),
        ("SMTP_URL", "smtp//mail.example.com:587", "must be smtp://host:port"),
        ("EMAIL_FROM", "Maple Mortgage <loans@>", "is not an email address"),
        ("TWILIO_FROM_NUMBER", "415-555-0100x", "E.164"),
        ("TWILIO_ACCOUNT_SID", "AC123", "AC followed by 32 hex digits"),
        ("TWILIO_MESSAGING_SERVICE_SID", "PN" + "0" * 32, "MG followed by 32 hex digits"),
        ("SLACK_MANAGER_IDS", "U0123ABCD, @maria", "'@maria' is not a Slack user id"),
        ("SLACK_APPROVALS_CHANNEL", "#approvals", "not a #name"),
        ("WINBACK_SMS_PER_SECOND", "ten", "is invalid: input should be a valid number"),
        ("WINBACK_SMS_PER_SECOND", "0", "between 0 and 10,000"),
        ("WINBACK_NOW", "yesterday", "ISO-8601"),
        ("COMPANY_NMLS_ID", "NMLS 123", "NMLS ID's digits"),
    ],
)
def test_a_typo_in_a_setting_is_one_line_naming_it(name: str, value: str, says: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(**{name: value})
    message = str(refused.value)
    assert message.startswith(f"setting {name} ") and says in message
    assert "\n" not in message


def test_the_cli_says_so_in_one_line_and_exits_2() -> None:
    result = CliRunner().invoke(app, ["segments"], env={"DATABASE_URL": "sqlite:/x.db"})

    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: setting DATABASE_URL is not a database URL "
        "(e.g. sqlite:///winback.db or postgresql://user@host/db)"
    ]


_WILD = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=string.printable, max_size=60),
    st.builds(
        lambda scheme, rest: f"{scheme}{rest}",
        st.sampled_from(
            [
                "sqlite:",
                "sqlite://",
                "postgresql://",
                "http://",
                "https://",
                "smtp://",
                "smtps://",
                "+1",
                "AC",
                "MG",
                "U",
                "C",
                "#",
                "",
            ]
        ),
        st.text(alphabet=string.ascii_letters + string.digits + ":/@.%?=-_ ", max_size=40),
    ),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(SETTINGS), value=_WILD)
def test_any_value_of_any_setting_is_accepted_or_refused_in_one_line(name: str, value: str) -> None:
    if "\x00" in value:
        return  # an environment variable cannot hold a NUL byte
    try:
        settings_ = load_settings(**{name: value})
    except SettingsError as refused:
        message = str(refused)
        assert message.startswith("setting ") and "\n" not in message
        named = message.split()[1]
        assert named in SETTINGS  # the setting itself, or the one it needs beside it
        return
    _use(settings_)


def _use(settings_: Settings) -> Any:
    """What start-up builds from the settings must not raise for an accepted value."""
    from sqlalchemy.engine import make_url

    from core.db import normalize_url

    make_url(normalize_url(settings_.DATABASE_URL))
    return settings_.manager_ids, settings_.live, settings_.WINBACK_SMS_PER_SECOND
