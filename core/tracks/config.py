"""Track definitions: which touches each segment gets, on which day, on which channel.

The shipped defaults are ``core/tracks/tracks.toml``. An operator's configuration
(``WINBACK_CONFIG``) may carry a ``[tracks]`` table with the same shape; each track named there
replaces the matching fields of the shipped track (``steps`` as a whole), and a new track may be
added when it names its trigger. ``delay_days`` counts days after enrollment (not after the
previous step), so a track's days never go backwards. A step may run an A/B experiment:
``variants = { b = 0.5 }`` (core.tracks.variants says who gets which).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from core.tracks.render import BASE_VARIANT, CHANNEL_PARTS, TEMPLATES_FOLDER

DEFAULTS_FILE = Path(__file__).with_name("tracks.toml")
TRIGGERS = (
    "rate_drop",
    "loan_age",
    "closing_anniversary",
    "fallout_anniversary",
    "arm_reset",
    "pmi_removal",
    "fha_mip",
)
CHANNELS = tuple(CHANNEL_PARTS)
CONDITIONS = ("no_reply", "always")
# "Reply STOP to opt out" goes on the first SMS of a track and on every third SMS after it.
STOP_EVERY = 3

_NAME = re.compile(r"^[a-z0-9][a-z0-9_]*$")
_TRACK_KEYS = {"trigger", "steps", "enabled", "description"}
_STEP_KEYS = {"delay_days", "channel", "template", "condition", "variants"}
# A variant's name goes into its template files' names (intro.b.sms.j2) and Message.variant.
_VARIANT = re.compile(r"^[a-z][a-z0-9_]{0,7}$")


class TrackConfigError(ValueError):
    """A track definition that cannot be used; the message names the track and step."""


@dataclass(frozen=True)
class Step:
    """One touch of a track: on which day after enrollment, how, with which template."""

    number: int
    delay_days: int
    channel: str
    template: str
    condition: str = "no_reply"
    include_stop: bool = False
    # (name, weight) of each alternative template; the base "a" takes the rest of the weight.
    variants: tuple[tuple[str, float], ...] = ()

    @property
    def weights(self) -> dict[str, float]:
        """Each arm's share, the base "a" first; {} when the step runs no experiment."""
        if not self.variants:
            return {}
        return {BASE_VARIANT: 1.0 - sum(w for _, w in self.variants), **dict(self.variants)}


@dataclass(frozen=True)
class Track:
    """The sequence of touches for one segment, started by its trigger."""

    name: str
    trigger: str
    steps: tuple[Step, ...]
    enabled: bool = True
    description: str = ""


def _read_file(path: Path) -> dict[str, Any]:
    """A configuration file (TOML, or YAML by extension) as a dict."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TrackConfigError(f"cannot read track configuration {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text) if path.suffix in (".yml", ".yaml") else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        message = " ".join(str(exc).split())
        raise TrackConfigError(f"track configuration {path} is malformed: {message}") from None
    if not isinstance(data, dict):
        raise TrackConfigError(f"track configuration {path} is not a table")
    return data


def _tracks_table(source: Path | str | Mapping[str, Any]) -> Mapping[str, Any]:
    """The `tracks` table of a file or mapping (a mapping without one is the table itself)."""
    data = _read_file(Path(source)) if isinstance(source, str | Path) else source
    table = data.get("tracks", {} if isinstance(source, str | Path) else data)
    if not isinstance(table, Mapping):
        raise TrackConfigError("tracks: must be a table of track name -> track")
    return table


def _integer(value: Any, where: str, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TrackConfigError(f"{where}: {field} must be a whole number >= 0, got {value!r}")
    return value


def _choice(value: Any, allowed: tuple[str, ...], where: str, field: str) -> str:
    if value not in allowed:
        raise TrackConfigError(f"{where}: {field} {value!r} is not one of {', '.join(allowed)}")
    return str(value)


def _parse_variants(raw: Any, where: str) -> tuple[tuple[str, float], ...]:
    """`variants = {b = 0.5}`: names and weights, which leave the base "a" a share."""
    if not isinstance(raw, Mapping) or not raw:
        raise TrackConfigError(f"{where}: variants must be a table like {{ b = 0.5 }}")
    found = []
    for name, weight in sorted(raw.items()):
        if not isinstance(name, str) or not _VARIANT.match(name) or name == BASE_VARIANT:
            raise TrackConfigError(
                f"{where}: variant name {name!r} must be a short lower-case name other than "
                f"{BASE_VARIANT!r} (the step's own template)"
            )
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 < weight < 1:
            raise TrackConfigError(f"{where}: variant {name} weight must be between 0 and 1")
        found.append((name, float(weight)))
    if sum(weight for _, weight in found) >= 1:
        raise TrackConfigError(
            f"{where}: variant weights must add up to less than 1 (the rest is variant "
            f"{BASE_VARIANT!r}, the step's own template)"
        )
    return tuple(found)


def _parse_step(raw: Any, where: str, number: int, sms_seen: int) -> Step:
    """One step table, validated."""
    if not isinstance(raw, Mapping):
        raise TrackConfigError(f"{where}: must be a table")
    unknown = set(raw) - _STEP_KEYS
    if unknown:
        raise TrackConfigError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    for field in ("delay_days", "channel", "template"):
        if field not in raw:
            raise TrackConfigError(f"{where}: {field} is required")
    template = raw["template"]
    if not isinstance(template, str) or not _NAME.match(template):
        raise TrackConfigError(
            f"{where}: template must be a lower-case name like 'intro', got {template!r}"
        )
    channel = _choice(raw["channel"], CHANNELS, where, "channel")
    return Step(
        number=number,
        delay_days=_integer(raw["delay_days"], where, "delay_days"),
        channel=channel,
        template=template,
        condition=_choice(raw.get("condition", "no_reply"), CONDITIONS, where, "condition"),
        include_stop=channel == "sms" and sms_seen % STOP_EVERY == 0,
        variants=_parse_variants(raw["variants"], where) if "variants" in raw else (),
    )


def _parse_steps(raw_steps: Any, where: str) -> tuple[Step, ...]:
    """A track's ordered steps, with day order and STOP placement checked."""
    if not isinstance(raw_steps, list) or not raw_steps:
        raise TrackConfigError(f"{where}: steps must be a non-empty list")
    steps: list[Step] = []
    sms_seen = 0
    for index, raw in enumerate(raw_steps, start=1):
        step = _parse_step(raw, f"{where} step {index}", index, sms_seen)
        sms_seen += step.channel == "sms"
        if steps and step.delay_days < steps[-1].delay_days:
            raise TrackConfigError(
                f"{where} step {index}: delay_days {step.delay_days} is before the previous "
                f"step's {steps[-1].delay_days} (days count from enrollment)"
            )
        steps.append(step)
    return tuple(steps)


def parse_track(name: str, raw: Any) -> Track:
    """One track table, validated into a Track."""
    where = f"track {name!r}"
    if not isinstance(name, str) or not _NAME.match(name):
        raise TrackConfigError(f"{where}: a track name must be lower-case letters, digits, _")
    if not isinstance(raw, Mapping):
        raise TrackConfigError(f"{where}: must be a table")
    unknown = set(raw) - _TRACK_KEYS
    if unknown:
        raise TrackConfigError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise TrackConfigError(f"{where}: enabled must be true or false")
    return Track(
        name=name,
        trigger=_choice(raw.get("trigger"), TRIGGERS, where, "trigger"),
        steps=_parse_steps(raw.get("steps"), where),
        enabled=enabled,
        description=str(raw.get("description", "")),
    )


def _check_one_track_per_trigger(tracks: Mapping[str, Track]) -> None:
    """Each trigger enrolls into at most one enabled track, so enrollment is unambiguous."""
    owner: dict[str, str] = {}
    for track in tracks.values():
        if track.enabled and track.trigger in owner:
            raise TrackConfigError(
                f"track {track.name!r}: trigger {track.trigger} already starts track "
                f"{owner[track.trigger]!r}; disable one of them"
            )
        owner.setdefault(track.trigger, track.name)


def check_template_files(tracks: Mapping[str, Track], folder: Path | None = None) -> None:
    """Every step's template files exist in the templates folder, or TrackConfigError."""
    folder = folder or TEMPLATES_FOLDER
    for track in tracks.values():
        for step in track.steps:
            names = [step.template] + [f"{step.template}.{name}" for name, _ in step.variants]
            for name, part in ((n, p) for n in names for p in CHANNEL_PARTS[step.channel]):
                path = folder / track.name / f"{name}.{part}.j2"
                if not path.is_file():
                    raise TrackConfigError(
                        f"track {track.name!r} step {step.number}: template file "
                        f"{track.name}/{path.name} does not exist in {folder}"
                    )


def load_tracks(
    override: Path | str | Mapping[str, Any] | None = None,
    *,
    templates_folder: Path | None = None,
    check_templates: bool = True,
) -> Mapping[str, Track]:
    """The shipped tracks with the operator's override applied, validated, read-only.

    ``override`` is a TOML/YAML file with a ``[tracks]`` table, a whole configuration dict
    holding a ``tracks`` key, or the tracks table itself.
    """
    merged: dict[str, dict[str, Any]] = {
        name: dict(raw) for name, raw in _tracks_table(DEFAULTS_FILE).items()
    }
    if override is not None:
        for name, raw in _tracks_table(override).items():
            if not isinstance(raw, Mapping):
                raise TrackConfigError(f"track {name!r}: must be a table")
            merged[name] = {**merged.get(name, {}), **raw}
    tracks = {name: parse_track(name, raw) for name, raw in merged.items()}
    _check_one_track_per_trigger(tracks)
    if check_templates:
        check_template_files(tracks, templates_folder)
    return MappingProxyType(tracks)


def track_for_trigger(tracks: Mapping[str, Track], trigger: str) -> Track | None:
    """The enabled track a trigger enrolls people into, if any."""
    return next((t for t in tracks.values() if t.trigger == trigger and t.enabled), None)
