"""Settings from the environment and `.env` (SPEC §3), validated once at start."""

from __future__ import annotations

from functools import cached_property

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core import setting_values as values


class SettingsError(Exception):
    """A missing or malformed setting; the message is one line naming it."""


class Settings(BaseSettings):
    """Every setting Winback reads. Names are part of the contract: keep them."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=True
    )

    DATABASE_URL: str = "sqlite:///winback.db"
    SLACK_BOT_TOKEN: str | None = None
    SLACK_SIGNING_SECRET: str | None = None
    SLACK_APP_TOKEN: str | None = None
    SLACK_API_URL: str = "https://slack.com/api/"
    SLACK_APPROVALS_CHANNEL: str | None = None
    SLACK_TEAM_CHANNEL: str | None = None
    SLACK_MANAGER_IDS: str = ""
    TWILIO_ACCOUNT_SID: str | None = None
    TWILIO_AUTH_TOKEN: str | None = None
    TWILIO_FROM_NUMBER: str | None = None
    TWILIO_MESSAGING_SERVICE_SID: str | None = None
    TWILIO_API_URL: str = "https://api.twilio.com"
    SMTP_URL: str | None = None
    EMAIL_FROM: str | None = None
    PUBLIC_BASE_URL: str = "http://localhost:8000"
    RATE_FEED_URL: str | None = None
    FRED_API_KEY: str | None = None
    EMAIL_INBOUND_SECRET: str | None = None
    COMPANY_NAME: str | None = None
    COMPANY_NMLS_ID: str | None = None
    COMPANY_ADDRESS: str | None = None
    COMPANY_LICENSING: str | None = None
    COMPANY_SUPPORT: str | None = None
    WINBACK_CONFIG: str | None = None
    WINBACK_NOW: str | None = None
    # Not in the contract table but needed to sign tokens; defaults to a value derived
    # from other secrets so a sandbox install works without it.
    WINBACK_SECRET_KEY: str | None = Field(default=None)
    # SMS pacing for the carrier (the sandbox is not paced).
    WINBACK_SMS_PER_SECOND: float = 10.0

    @field_validator("DATABASE_URL")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return values.database_url(value)

    @field_validator("SLACK_API_URL", "TWILIO_API_URL", "PUBLIC_BASE_URL")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return values.http_url(value)

    @field_validator("RATE_FEED_URL")
    @classmethod
    def _feed_url(cls, value: str | None) -> str | None:
        # A path to a rate-sheet file is allowed too (the feeds read file:// and plain paths).
        if value and value.startswith(("http:", "https:")):
            values.http_url(value)
        return value or None

    @field_validator("SMTP_URL")
    @classmethod
    def _smtp_url(cls, value: str | None) -> str | None:
        return values.smtp_url(value) if value else None

    @field_validator("EMAIL_FROM")
    @classmethod
    def _email_from(cls, value: str | None) -> str | None:
        return values.email_from(value) if value else None

    @field_validator("TWILIO_FROM_NUMBER")
    @classmethod
    def _from_number(cls, value: str | None) -> str | None:
        return values.phone_number(value) if value else None

    @field_validator("TWILIO_ACCOUNT_SID")
    @classmethod
    def _account_sid(cls, value: str | None) -> str | None:
        return values.twilio_sid(value, "AC") if value else None

    @field_validator("TWILIO_MESSAGING_SERVICE_SID")
    @classmethod
    def _service_sid(cls, value: str | None) -> str | None:
        return values.twilio_sid(value, "MG") if value else None

    @field_validator("SLACK_MANAGER_IDS")
    @classmethod
    def _managers(cls, value: str) -> str:
        return values.slack_user_ids(value)

    @field_validator("SLACK_APPROVALS_CHANNEL", "SLACK_TEAM_CHANNEL")
    @classmethod
    def _channel(cls, value: str | None) -> str | None:
        return values.slack_channel_id(value) if value else None

    @field_validator("WINBACK_SMS_PER_SECOND")
    @classmethod
    def _sms_rate(cls, value: float) -> float:
        if not 0 < value <= 10_000:
            raise ValueError("must be a number of messages per second between 0 and 10,000")
        return value

    @field_validator(
        "COMPANY_NAME", "COMPANY_NMLS_ID", "COMPANY_ADDRESS", "COMPANY_LICENSING", "COMPANY_SUPPORT"
    )
    @classmethod
    def _disclosure(cls, value: str | None, info: ValidationInfo) -> str | None:
        # A blank line in .env (`COMPANY_LICENSING=`) is no disclosure: treat it as unset.
        value = (value or "").strip() or None
        if value and info.field_name == "COMPANY_NMLS_ID":
            values.nmls_id(value)
        return value

    @field_validator("WINBACK_NOW")
    @classmethod
    def _now(cls, value: str | None) -> str | None:
        if value:
            from datetime import datetime

            try:
                datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError("must be an ISO-8601 time, e.g. 2026-09-24T18:00:00Z") from None
        return value or None

    @cached_property
    def manager_ids(self) -> frozenset[str]:
        """Slack user ids allowed to approve, reject, pause and resume."""
        return frozenset(part.strip() for part in self.SLACK_MANAGER_IDS.split(",") if part.strip())

    @property
    def live(self) -> bool:
        """True when anything can leave the machine (Twilio or SMTP configured)."""
        return self.sms_enabled or bool(self.SMTP_URL)

    @property
    def secret_key(self) -> str:
        """The key that signs links; a fixed key only in sandbox mode, where nothing is sent."""
        return self.WINBACK_SECRET_KEY or "winback-sandbox-signing-key"

    @property
    def slack_enabled(self) -> bool:
        """True when Slack credentials are configured (otherwise posts go to the log)."""
        return bool(self.SLACK_BOT_TOKEN)

    @property
    def sms_enabled(self) -> bool:
        """True when Twilio credentials are configured (otherwise SMS go to the sandbox)."""
        return bool(self.TWILIO_ACCOUNT_SID and self.TWILIO_AUTH_TOKEN)

    def require(self, *names: str) -> None:
        """Fail with one line naming the first of `names` that is unset."""
        for name in names:
            if not getattr(self, name):
                raise SettingsError(f"setting {name} is required here but is not set")


def load_settings(**overrides: object) -> Settings:
    """Read settings, turning a validation failure into one line that names the setting."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(part) for part in first["loc"]) or "settings"
        # pydantic prefixes our reasons with "Value error, "; its own ones read fine.
        reason = first["msg"].removeprefix("Value error, ").splitlines()[0]
        if reason[:1].isupper():  # pydantic's own: "Input should be a valid number..."
            reason = f"is invalid: {reason[0].lower()}{reason[1:]}"
        raise SettingsError(f"setting {name} {reason}") from None
    if settings.slack_enabled and not settings.SLACK_SIGNING_SECRET:
        raise SettingsError("setting SLACK_SIGNING_SECRET is required when SLACK_BOT_TOKEN is set")
    if settings.slack_enabled and not settings.SLACK_APPROVALS_CHANNEL:
        raise SettingsError(
            "setting SLACK_APPROVALS_CHANNEL is required when SLACK_BOT_TOKEN is set"
        )
    if settings.sms_enabled and not (
        settings.TWILIO_FROM_NUMBER or settings.TWILIO_MESSAGING_SERVICE_SID
    ):
        raise SettingsError(
            "setting TWILIO_FROM_NUMBER (or TWILIO_MESSAGING_SERVICE_SID) is required "
            "when TWILIO_ACCOUNT_SID is set"
        )
    if settings.live and not settings.WINBACK_SECRET_KEY:
        # Unsubscribe links must keep working forever, so their key cannot be a default.
        raise SettingsError(
            "setting WINBACK_SECRET_KEY is required when Twilio or SMTP is configured"
        )
    if settings.SMTP_URL and not settings.EMAIL_FROM:
        raise SettingsError("setting EMAIL_FROM is required when SMTP_URL is set")
    # Every marketing message names the brokerage (SPEC §3: required for live sends).
    for name in ("COMPANY_NAME", "COMPANY_NMLS_ID", "COMPANY_ADDRESS"):
        if settings.live and not getattr(settings, name):
            raise SettingsError(f"setting {name} is required when Twilio or SMTP is configured")
    # The email footer carries the state licensing line and the support contact (COMPLIANCE §5).
    for name in ("COMPANY_LICENSING", "COMPANY_SUPPORT"):
        if settings.SMTP_URL and not getattr(settings, name):
            raise SettingsError(f"setting {name} is required when SMTP_URL is set")
    return settings
