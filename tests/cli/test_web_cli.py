"""`winback web` says at start-up which webhooks it will accept, and why it refuses the rest."""

from __future__ import annotations

from bot.cli.web import webhook_summary
from core.settings import load_settings


def test_an_unconfigured_install_says_webhooks_will_be_refused() -> None:
    lines = webhook_summary(load_settings(PUBLIC_BASE_URL="https://winback.example.com"))
    assert lines[0] == "links in messages point to https://winback.example.com"
    assert "refused with 403 (TWILIO_AUTH_TOKEN is not set)" in lines[1]
    assert "refused with 403 (EMAIL_INBOUND_SECRET is not set)" in lines[2]


def test_a_configured_install_names_the_url_twilio_must_sign() -> None:
    settings = load_settings(
        PUBLIC_BASE_URL="https://winback.example.com/",
        TWILIO_AUTH_TOKEN="token",
        EMAIL_INBOUND_SECRET="s3cret",
    )
    lines = webhook_summary(settings)
    assert "verified with TWILIO_AUTH_TOKEN against https://winback.example.com/twilio/" in lines[1]
    assert lines[2].endswith("guarded by EMAIL_INBOUND_SECRET")
