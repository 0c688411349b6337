"""Rendering track templates in a Jinja2 sandbox.

Templates live in ``templates/<track>/`` (``templates/system/`` for the HELP answer and the
opt-out confirmation; folders starting with ``_`` hold shared pieces that are only included):

- SMS: ``<name>.sms.j2``
- email: ``<name>.subject.j2``, ``<name>.txt.j2``, ``<name>.html.j2`` (only HTML autoescapes)
- call task for the loan officer: ``<name>.task.j2``
- a step's variant ``b`` (core.tracks.variants): the same parts as ``<name>.b.<part>.j2``;
  variant ``a`` is the base template itself

The render context contract (every name a template may use; a missing one fails the render):

- ``borrower.first_name``, ``borrower.last_name``
- ``lo.name``, ``lo.nmls_id``, ``lo.email``
- ``company.name``, ``company.nmls_id``, ``company.address`` (postal), ``company.licensing``
  (the state licensing line), ``company.support`` (a phone number or web address where
  borrowers reach the brokerage; the email footer and the HELP answer print it). System
  templates (HELP, opt-out confirmation) need only ``company``.
- ``links.savings`` (the borrower's personal savings page), ``links.unsubscribe``
- ``step.number`` (1-based position in the track), ``step.include_stop`` (print "Reply STOP to
  opt out": the first SMS of a track and at least every third after)
- ``reason``: a dict with ``trigger`` and, per trigger, ``loan_age_years``,
  ``anniversary_years``, ``fallout_months``, ``arm_reset_date``, ``rate_product`` (e.g.
  ``'30-year fixed'``), ``rate_source`` (e.g. ``'Freddie Mac PMMS weekly average, 2026-09-24,
  plus our offset'``)
- ``math`` (refinance, pmi_removal and fha_mip emails only), strings already formatted:
  ``current_payment`` ('$2,398.20'), ``remaining_balance`` ('$318,450'), ``example_rate``
  ('5.875%'), ``example_apr`` ('6.012%'), ``new_payment`` ('$1,883.71'), ``new_term_years``
  ('30'), ``monthly_savings`` ('$514.49'), ``closing_costs`` ('$5,185'),
  ``break_even_months`` ('11'), ``ltv_assumed`` ('80%'), ``rate_as_of`` ('September 24, 2026')

A render that cannot complete raises ``RenderError`` (one line naming the variable or the
blocked operation and the template): the caller records ``render_failed`` and never sends a
blank or half-rendered message.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.utils import missing

TEMPLATES_FOLDER = Path(__file__).resolve().parents[2] / "templates"

# The files that make up one template of each channel, in the order they are hashed.
CHANNEL_PARTS: dict[str, tuple[str, ...]] = {
    "sms": ("sms",),
    "email": ("subject", "txt", "html"),
    "call_task": ("task",),
}
# Bumping this changes every version hash: do it when rendering itself changes materially.
_HASH_SCHEME = "winback-template-v1"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_]*$")
# A step's A/B experiment (core.tracks.variants): its own template is variant a.
BASE_VARIANT = "a"


class RenderError(Exception):
    """A template that could not be rendered; the message is one line fit for a log."""


@dataclass(frozen=True)
class Rendered:
    """One rendered step: the text for its channel and the version of the templates used."""

    channel: str
    track: str
    template: str
    version_hash: str
    # The exact template sources the hash covers, so each version can be stored with its text.
    source: str
    sms_body: str | None = None
    email_subject: str | None = None
    email_text: str | None = None
    email_html: str | None = None
    task_text: str | None = None
    # The A/B arm rendered ("a" is the base template), None when the step runs no experiment.
    variant: str | None = None


class _Section(dict):  # type: ignore[type-arg]
    """A context dict that knows its dotted path, so a missing key is named in full."""

    _winback_path: str = ""


class _MissingVariable(StrictUndefined):
    """StrictUndefined whose error names the full variable, e.g. ``borrower.middle_name``."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        name = self._undefined_name
        if self._undefined_hint is None and name is not None:
            parent = getattr(self._undefined_obj, "_winback_path", None)
            if parent:
                return f"missing variable {parent}.{name}"
            if self._undefined_obj is missing:
                return f"missing variable {name}"
        return str(super()._undefined_message)


def _is_html(name: str | None) -> bool:
    return bool(name and name.endswith(".html.j2"))


def _wrap(value: Any, path: str) -> Any:
    """Turn nested mappings into path-aware sections (other values pass through)."""
    if isinstance(value, Mapping):
        section = _Section({key: _wrap(item, f"{path}.{key}") for key, item in value.items()})
        section._winback_path = path
        return section
    return value


def _template_line(traceback: TracebackType | None, folder: Path, name: str) -> str:
    """' line N' of the innermost template frame (naming an included file), or ''."""
    where = ""
    while traceback is not None:
        filename = traceback.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            path = Path(filename)
            relative = path.relative_to(folder).as_posix() if path.is_relative_to(folder) else name
            via = "" if relative == name else f" via {relative}"
            where = f"{via} line {traceback.tb_lineno}"
        traceback = traceback.tb_next
    return where


def _one_line(text: str) -> str:
    return " ".join(text.split())


def normalize_sms(text: str) -> str:
    """An SMS body as one paragraph: NFC-normalized, every whitespace run a single space."""
    return _one_line(unicodedata.normalize("NFC", text))


def _normalize_email_text(text: str) -> str:
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)) + "\n"


class TemplateRenderer:
    """Renders the templates of one folder in a sandbox with strict variables."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = Path(folder).resolve() if folder is not None else TEMPLATES_FOLDER
        self.env = ImmutableSandboxedEnvironment(
            loader=FileSystemLoader(self.folder),
            undefined=_MissingVariable,
            autoescape=_is_html,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            auto_reload=True,
        )
        self._references_by_source: dict[str, list[str]] = {}

    def part_names(
        self, *, track: str, template: str, channel: str, variant: str | None = None
    ) -> list[str]:
        """The loader names of the files making up this template, e.g. 'refinance/intro.sms.j2'
        ('refinance/intro.b.sms.j2' for its variant b; variant a is the base)."""
        if channel not in CHANNEL_PARTS:
            raise RenderError(f"unknown channel {channel!r} for {track}/{template}")
        for label, value in (("track", track), ("template", template), ("variant", variant)):
            if value is not None and not _NAME.match(value):
                raise RenderError(f"invalid {label} name {value!r}")
        stem = template if variant in (None, BASE_VARIANT) else f"{template}.{variant}"
        return [f"{track}/{stem}.{part}.j2" for part in CHANNEL_PARTS[channel]]

    def _source(self, name: str) -> str:
        try:
            return self.env.loader.get_source(self.env, name)[0]  # type: ignore[union-attr]
        except TemplateError as exc:
            raise RenderError(f"template {name} not found ({exc})") from None

    def _references(self, name: str, source: str) -> list[str]:
        """Templates a source includes, extends or imports (parsed once per distinct source)."""
        if source not in self._references_by_source:
            try:
                parsed = self.env.parse(source, name=name, filename=name)
            except TemplateError as exc:
                raise RenderError(f"template {name} line {exc.lineno}: {exc.message}") from None
            found = [ref for ref in meta.find_referenced_templates(parsed) if ref]
            self._references_by_source[source] = found
        return self._references_by_source[source]

    def sources(self, names: list[str]) -> dict[str, str]:
        """Each named template's source plus every template it includes, extends or imports."""
        found: dict[str, str] = {}
        pending = list(names)
        while pending:
            name = pending.pop(0)
            if name not in found:
                found[name] = self._source(name)
                pending.extend(self._references(name, found[name]))
        return found

    def render_one(self, name: str, context: Mapping[str, Any]) -> str:
        """One template file rendered with the context; any failure becomes RenderError."""
        try:
            return self.env.get_template(name).render(context)
        except SecurityError as exc:
            line = _template_line(exc.__traceback__, self.folder, name)
            raise RenderError(f"blocked unsafe template code in {name}{line}: {exc}") from None
        except TemplateError as exc:
            line = _template_line(exc.__traceback__, self.folder, name)
            message = _one_line(exc.message or type(exc).__name__)
            raise RenderError(f"{message} in {name}{line}") from None
        except Exception as exc:  # a failing filter or test: still one clear line
            line = _template_line(exc.__traceback__, self.folder, name)
            raise RenderError(f"{type(exc).__name__}: {exc} in {name}{line}") from None

    def render_step(
        self,
        *,
        track: str,
        template: str,
        channel: str,
        context: Mapping[str, Any],
        variant: str | None = None,
    ) -> Rendered:
        """Render one step's template(s) for its channel (its `variant`'s files for b, c…),
        with the version hash of the sources."""
        names = self.part_names(track=track, template=template, channel=channel, variant=variant)
        sources = self.sources(names)
        # The base's header stays as it was, so variant a and a step without variants share
        # their versions (the same text); a variant's files are named in its header and parts.
        stem = template if variant in (None, BASE_VARIANT) else f"{template}.{variant}"
        # Plain text (no NUL bytes) so it can be stored as-is, in PostgreSQL too.
        source = f"{_HASH_SCHEME} {track}/{stem} {channel}\n" + "".join(
            f"--- {name} ---\n{text}\n" for name, text in sources.items()
        )
        version_hash = hashlib.sha256(source.encode("utf-8")).hexdigest()
        wrapped = {key: _wrap(value, key) for key, value in context.items()}
        texts = [self.render_one(name, wrapped) for name in names]
        common = {
            "channel": channel,
            "track": track,
            "template": template,
            "version_hash": version_hash,
            "source": source,
            "variant": variant,
        }
        if channel == "sms":
            return Rendered(**common, sms_body=normalize_sms(texts[0]))
        if channel == "email":
            subject, text, html = texts
            return Rendered(
                **common,
                email_subject=_one_line(subject),
                email_text=_normalize_email_text(text),
                email_html=html.strip() + "\n",
            )
        return Rendered(**common, task_text=_normalize_email_text(texts[0]))


@lru_cache(maxsize=8)
def renderer_for(folder: Path | None = None) -> TemplateRenderer:
    """The shared renderer of a templates folder (the repo's by default)."""
    return TemplateRenderer(folder)


def render_step(
    *,
    track: str,
    template: str,
    channel: str,
    context: Mapping[str, Any],
    folder: Path | None = None,
    variant: str | None = None,
) -> Rendered:
    """Render one step of a track (``track='system'`` for HELP and the opt-out confirmation),
    as its `variant` when the step runs an experiment."""
    return renderer_for(folder).render_step(
        track=track, template=template, channel=channel, context=context, variant=variant
    )
