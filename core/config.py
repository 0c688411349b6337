"""Winback's configuration: shipped defaults (core/defaults.toml) merged with WINBACK_CONFIG.

Validated once at start; a malformed value stops the program with one line naming the key.
"""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULTS_FILE = Path(__file__).with_name("defaults.toml")


class ConfigError(ValueError):
    """A configuration file or value that cannot be used; one line naming the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# An offset is a spread in points, never a rate: past this it is a rate typed in the wrong key.
_WIDEST_OFFSET = Decimal("3")


class RatesConfig(_Section):
    """How the market index becomes this broker's offer rate, and which moves need a person."""

    # Every value here is in percentage points (a difference of rates), none is a rate, so
    # none goes through the rate parser: 0.125 is an eighth of a point, not 12.5 %.
    offset_30y: Decimal = Decimal("0")
    offset_15y: Decimal = Decimal("0")
    fifteen_year_max_term_months: int = Field(240, ge=0)
    max_move_points: Decimal = Field(Decimal("1.0"), gt=0, le=5)

    @field_validator("offset_30y", "offset_15y")
    @classmethod
    def _offset_is_points(cls, value: Decimal) -> Decimal:
        if abs(value) > _WIDEST_OFFSET:
            raise ValueError(
                f"{value} is not an offset: write the points added to the index "
                f"(e.g. -0.125), at most {_WIDEST_OFFSET} either way, not a rate"
            )
        return value

    def offset(self, product: str) -> Decimal:
        """The configured offset for `30y` or `15y`."""
        return self.offset_15y if product == "15y" else self.offset_30y


class MathConfig(_Section):
    """Assumptions of the refinance math (SPEC §4 defaults)."""

    closing_costs_flat: Decimal = Field(Decimal("2000"), ge=0)
    closing_costs_percent: Decimal = Field(Decimal("1"), ge=0, le=10)
    new_term_months: int = Field(360, ge=60, le=480)
    earliest_closing_days: int = Field(30, ge=0, le=365)
    annual_appreciation_percent: Decimal = Field(Decimal("0"), ge=-20, le=20)


class BatchesConfig(_Section):
    """Batch lifetime, and how far the rate may move before a pending batch is stale."""

    pending_expiry_hours: int = Field(72, ge=1)
    # Points (a difference of rates, like the offsets): past this, the figures would be wrong.
    rate_tolerance_points: Decimal = Field(Decimal("0.125"), ge=0, le=1)


class TriggerConfig(_Section):
    """Settings every trigger has."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    enabled: bool = True
    # Deprecated: `[approval] require_for` decides. An explicit value here still adds the
    # trigger to it (true) or takes it out (false), so older WINBACK_CONFIG files keep working.
    approval_required: bool | None = None


class RateDropConfig(TriggerConfig):
    """The rate-drop trigger (COMPLIANCE §7 gating)."""

    threshold_points: Decimal = Field(Decimal("0.75"), gt=0)
    min_monthly_savings: Decimal = Field(Decimal("100"), ge=0)
    max_break_even_months: int = Field(36, ge=1, le=36)
    seasoning_days: int = Field(210, ge=210)
    seasoning_payments: int = Field(6, ge=6)
    va_min_drop_points: Decimal = Field(Decimal("0.50"), ge=Decimal("0.50"))
    cooldown_days: int = Field(90, ge=0)
    next_wave_points: Decimal = Field(Decimal("0.25"), gt=0)


class LoanAgeConfig(TriggerConfig):
    """Loan-age milestones."""

    milestone_years: list[int] = Field(default_factory=lambda: [3, 5, 7])
    window_days: int = Field(30, ge=1, le=365)


class ClosingAnniversaryConfig(TriggerConfig):
    """Closing anniversaries coming up."""

    lookahead_days: int = Field(30, ge=1, le=180)


class FalloutAnniversaryConfig(TriggerConfig):
    """Stalled applications, some time after they fell out."""

    offsets_days: list[int] = Field(default_factory=lambda: [90, 182, 365])
    window_days: int = Field(14, ge=1, le=90)
    denied_cooling_days: int = Field(180, ge=0)


class ArmResetConfig(TriggerConfig):
    """ARM first adjustments coming up."""

    within_days: int = Field(180, ge=1, le=730)


class LtvConfig(TriggerConfig):
    """PMI removal and FHA-to-conventional: an estimated LTV at or below a ceiling."""

    max_ltv_percent: Decimal = Field(Decimal("80"), gt=0, le=100)


TRIGGER_NAMES = (
    "rate_drop",
    "loan_age",
    "closing_anniversary",
    "fallout_anniversary",
    "arm_reset",
    "pmi_removal",
    "fha_mip",
)


class TriggersConfig(_Section):
    """Every trigger's parameters, and which trigger wins a person several of them find."""

    priority: tuple[str, ...] = TRIGGER_NAMES
    rate_drop: RateDropConfig = RateDropConfig()
    loan_age: LoanAgeConfig = LoanAgeConfig()
    closing_anniversary: ClosingAnniversaryConfig = ClosingAnniversaryConfig()
    fallout_anniversary: FalloutAnniversaryConfig = FalloutAnniversaryConfig()
    arm_reset: ArmResetConfig = ArmResetConfig()
    pmi_removal: LtvConfig = LtvConfig()
    fha_mip: LtvConfig = LtvConfig()

    @field_validator("priority")
    @classmethod
    def _every_trigger_once(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        # A trigger left out would never run, and one named twice has no single rank.
        unknown = [name for name in names if name not in TRIGGER_NAMES]
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not a trigger: name {', '.join(TRIGGER_NAMES)}")
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"{', '.join(twice)} named more than once: name every trigger once")
        missing = [name for name in TRIGGER_NAMES if name not in names]
        if missing:
            raise ValueError(f"{', '.join(missing)} missing: name every trigger once")
        return names


class ApprovalConfig(_Section):
    """Which triggers' batches wait for a manager (`pending_approval`) instead of starting."""

    require_for: tuple[str, ...] = ("rate_drop",)

    @field_validator("require_for")
    @classmethod
    def _known_triggers(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in names if name not in TRIGGER_NAMES]
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not a trigger: name {', '.join(TRIGGER_NAMES)}")
        return tuple(dict.fromkeys(names))


class ComplianceConfig(_Section):
    """Send-time rules; the law's limits are floors an operator can only tighten."""

    max_per_24h: int = Field(1, ge=0, le=1)
    max_per_7d: int = Field(3, ge=0, le=3)
    universal_safe_schedule: bool = False
    louisiana_emergency: bool = False
    relax_states_for_email: bool = False
    max_sms_segments: int = Field(2, ge=1, le=4)
    no_cost_claims_allowed: bool = False


class RepliesConfig(_Section):
    """How warm replies reach the loan officers: the claim SLA, its business hours, reminders."""

    # Unclaimed this many business minutes after posting: escalated once to the team channel.
    claim_sla_minutes: int = Field(10, ge=1, le=24 * 60)
    business_hours_start: int = Field(9, ge=0, le=23)  # local hour, the LO's time zone
    business_hours_end: int = Field(18, ge=1, le=24)
    business_days: tuple[int, ...] = (0, 1, 2, 3, 4)  # Monday = 0
    default_timezone: str = "America/New_York"  # for LOs without their own
    outcome_reminder_hours: int = Field(24, ge=1)  # claimed but no outcome: remind the claimer
    snooze_minutes: int = Field(60, ge=5, le=7 * 24 * 60)
    # A batch this big needs the manager to type its size in a dialog before it is approved.
    confirm_batch_size_above: int = Field(250, ge=1)

    @model_validator(mode="after")
    def _hours_in_order(self) -> RepliesConfig:
        if self.business_hours_end <= self.business_hours_start:
            raise ValueError("replies.business_hours_end must be after business_hours_start")
        if not self.business_days or any(not 0 <= day <= 6 for day in self.business_days):
            raise ValueError("replies.business_days are 0 (Monday) to 6 (Sunday)")
        return self


class AttributionConfig(_Section):
    """How long after the last touch a funded loan is still credited to the outreach."""

    window_days: int = Field(120, ge=1, le=730)


class HoldoutConfig(_Section):
    """The share of each approved batch held out (never messaged) to measure the lift."""

    fraction: float = Field(0.05, ge=0, le=0.5)
    triggers: dict[str, float] = Field(default_factory=dict)  # per-trigger overrides

    @field_validator("triggers")
    @classmethod
    def _known_fractions(cls, fractions: dict[str, float]) -> dict[str, float]:
        for name, value in fractions.items():
            if name not in TRIGGER_NAMES:
                raise ValueError(f"{name!r} is not a trigger: name {', '.join(TRIGGER_NAMES)}")
            if not 0 <= value <= 0.5:
                raise ValueError(f"{name}: a holdout fraction is between 0 and 0.5, not {value}")
        return fractions

    def fraction_for(self, trigger: str) -> float:
        """The held-out share of this trigger's batches."""
        return self.triggers.get(trigger, self.fraction)


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class DigestConfig(_Section):
    """The weekly digest in the approvals channel: on which day and hour (default time zone)."""

    enabled: bool = True
    weekday: str = "monday"
    hour: int = Field(8, ge=0, le=23)  # local hour in [replies] default_timezone

    @field_validator("weekday")
    @classmethod
    def _a_day_of_the_week(cls, value: str) -> str:
        day = value.strip().lower()
        if day not in WEEKDAYS:
            names = ", ".join(WEEKDAYS)
            raise ValueError(f"{value!r} is not a day of the week: name one of {names}")
        return day

    @property
    def weekday_number(self) -> int:
        """Monday = 0, as datetime counts."""
        return WEEKDAYS.index(self.weekday)


class Config(_Section):
    """The whole configuration."""

    rates: RatesConfig = RatesConfig()
    math: MathConfig = MathConfig()
    batches: BatchesConfig = BatchesConfig()
    triggers: TriggersConfig = TriggersConfig()
    approval: ApprovalConfig = ApprovalConfig()
    compliance: ComplianceConfig = ComplianceConfig()
    replies: RepliesConfig = RepliesConfig()
    attribution: AttributionConfig = AttributionConfig()
    holdout: HoldoutConfig = HoldoutConfig()
    digest: DigestConfig = DigestConfig()
    tracks: dict[str, Any] = Field(default_factory=dict)

    def approval_required(self, trigger: str) -> bool:
        """Whether this trigger's batches wait for a manager: `[approval] require_for`, with a
        trigger's own (deprecated) `approval_required`, when set, overriding it."""
        explicit = getattr(self.triggers, trigger).approval_required
        return trigger in self.approval.require_for if explicit is None else explicit

    @model_validator(mode="after")
    def _milestones_positive(self) -> Config:
        if any(year <= 0 for year in self.triggers.loan_age.milestone_years):
            raise ValueError("triggers.loan_age.milestone_years must be positive")
        return self


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from None


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """The shipped defaults, overridden by the file at `path` and then by `overrides`."""
    raw = _read(DEFAULTS_FILE)
    if path:
        raw = _merge(raw, _read(Path(path)))
    if overrides:
        raw = _merge(raw, overrides)
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"configuration {key}: {first['msg']}") from None
