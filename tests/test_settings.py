"""Settings a live install needs are refused at start with one line naming the setting."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.settings import SettingsError, load_settings

COMPANY = {
    "COMPANY_NAME": "Maple Mortgage",
    "COMPANY_NMLS_ID": "123456",
    "COMPANY_ADDRESS": "1 Market St, San Francisco, CA 94105",
    "COMPANY_LICENSING": "Licensed by the California DFPI under the CFL, license 60DBO-12345.",
    "COMPANY_SUPPORT": "(415) 555-0199",
}
TWILIO = {
    "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
    "TWILIO_AUTH_TOKEN": "token",
    "TWILIO_FROM_NUMBER": "+14155550100",
}
SMTP = {"SMTP_URL": "smtp://127.0.0.1:2525", "EMAIL_FROM": "loans@maple.example.com"}
SECRET = {"WINBACK_SECRET_KEY": "test-signing-key"}


@pytest.fixture(autouse=True)
def _no_company_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # A developer's shell must not fill in what these tests leave out.
    for name in COMPANY:
        monkeypatch.delenv(name, raising=False)
    yield


def _without(values: dict[str, str], name: str) -> dict[str, str]:
    return {key: value for key, value in values.items() if key != name}


def _refusal(**values: str) -> str:
    with pytest.raises(SettingsError) as caught:
        load_settings(**values)
    return str(caught.value)


@pytest.mark.parametrize("name", ["COMPANY_LICENSING", "COMPANY_SUPPORT"])
def test_live_email_needs_the_licensing_line_and_the_support_contact(name: str) -> None:
    message = _refusal(**SMTP, **SECRET, **_without(COMPANY, name))

    assert message == f"setting {name} is required when SMTP_URL is set"
    assert "\n" not in message


@pytest.mark.parametrize("name", ["COMPANY_NAME", "COMPANY_NMLS_ID", "COMPANY_ADDRESS"])
@pytest.mark.parametrize("channel", [TWILIO, SMTP], ids=["twilio", "smtp"])
def test_any_live_send_needs_the_company_disclosures(name: str, channel: dict[str, str]) -> None:
    message = _refusal(**channel, **SECRET, **_without(COMPANY, name))

    assert message == f"setting {name} is required when Twilio or SMTP is configured"


def test_a_blank_licensing_line_is_no_licensing_line() -> None:
    message = _refusal(**SMTP, **SECRET, **(COMPANY | {"COMPANY_LICENSING": "   "}))

    assert message == "setting COMPANY_LICENSING is required when SMTP_URL is set"


def test_the_configured_lines_are_read() -> None:
    settings = load_settings(**SMTP, **SECRET, **COMPANY)

    read = {
        "COMPANY_LICENSING": settings.COMPANY_LICENSING,
        "COMPANY_SUPPORT": settings.COMPANY_SUPPORT,
    }
    assert read == {name: COMPANY[name] for name in read}


def test_sms_only_needs_no_email_footer_lines() -> None:
    settings = load_settings(**TWILIO, **SECRET, **_without(COMPANY, "COMPANY_LICENSING"))

    assert settings.live and settings.COMPANY_LICENSING is None


def test_sandbox_needs_none_of_them() -> None:
    settings = load_settings()

    assert not settings.live
    assert settings.COMPANY_NAME is None and settings.COMPANY_LICENSING is None
