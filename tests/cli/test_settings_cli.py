"""A live install missing an email footer setting stops at start with one `error:` line."""

from __future__ import annotations

from typing import Any

LIVE_EMAIL = {
    "SMTP_URL": "smtp://127.0.0.1:1",
    "EMAIL_FROM": "loans@maple.example.com",
    "WINBACK_SECRET_KEY": "test-signing-key",
    "COMPANY_NAME": "Maple Mortgage",
    "COMPANY_NMLS_ID": "123456",
    "COMPANY_ADDRESS": "1 Market St, San Francisco, CA 94105",
    "COMPANY_SUPPORT": "(415) 555-0199",
}


def test_dispatch_without_the_licensing_line_names_it_in_one_line(winback: Any) -> None:
    result = winback("dispatch", env={**LIVE_EMAIL, "COMPANY_LICENSING": ""})

    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: setting COMPANY_LICENSING is required when SMTP_URL is set"
    ]
    assert result.stdout == ""
