"""Rendering track templates in the sandbox, and loading the track definitions."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.tracks.config import (
    Step,
    TrackConfigError,
    load_tracks,
    track_for_trigger,
)
from core.tracks.lint import sample_context
from core.tracks.render import TEMPLATES_FOLDER, RenderError, TemplateRenderer, render_step

SEGMENTS = {
    "refinance": "rate_drop",
    "repeat_purchase": "loan_age",
    "anniversary": "closing_anniversary",
    "stalled": "fallout_anniversary",
    "arm_reset": "arm_reset",
    "pmi_removal": "pmi_removal",
    "fha_mip": "fha_mip",
}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A private copy of the shipped templates that a test may change."""
    copy = tmp_path / "templates"
    shutil.copytree(TEMPLATES_FOLDER, copy)
    return copy


def _write(folder: Path, name: str, text: str) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


# --- rendering -------------------------------------------------------------------------------


def test_every_step_of_every_shipped_track_renders() -> None:
    for track in load_tracks().values():
        for step in track.steps:
            context = sample_context(track.name, include_stop=step.include_stop)
            rendered = render_step(
                track=track.name, template=step.template, channel=step.channel, context=context
            )
            texts = [rendered.sms_body, rendered.email_text, rendered.task_text]
            text = next(t for t in texts if t)
            assert text.startswith(("Maximiliana-Ros", "Hi Maximiliana-Ros", "Happy", "Call")), (
                track.name,
                step,
            )
            assert "Maximiliana-Ros" in text


def test_sms_is_one_paragraph_and_names_the_sender() -> None:
    rendered = render_step(
        track="refinance", template="intro", channel="sms", context=sample_context("refinance")
    )
    body = rendered.sms_body or ""
    assert "\n" not in body and "  " not in body and body == body.strip()
    assert body.startswith("Maximiliana-Ros, mortgage rates are now lower")
    assert body.endswith("Evergreen Mountain Home Lending, NMLS 7654321. Reply STOP to opt out")
    assert "https://go.evergreenmountainlending.com/s/" in body


def test_stop_text_only_when_the_step_asks_for_it() -> None:
    context = sample_context("refinance", include_stop=False)
    body = render_step(track="refinance", template="follow_up", channel="sms", context=context)
    assert "STOP" not in (body.sms_body or "")
    assert (body.sms_body or "").endswith("NMLS 7654321")


def test_email_has_subject_text_and_html() -> None:
    rendered = render_step(
        track="refinance", template="intro", channel="email", context=sample_context("refinance")
    )
    assert rendered.email_subject == (
        "Maximiliana-Ros, rates have come down: what it could mean for your mortgage"
    )
    assert "5.875 % interest rate, 6.012 % APR" in (rendered.email_text or "")
    assert "360 monthly payments of $1,883.71" in (rendered.email_text or "")
    assert '<a href="https://go.evergreenmountainlending.com/u/' in (rendered.email_html or "")


def test_help_and_optout_confirmation_render() -> None:
    context = sample_context("system")
    help_text = render_step(track="system", template="help", channel="sms", context=context)
    assert "Msg & data rates may apply" in (help_text.sms_body or "")
    assert "Reply STOP to opt out" in (help_text.sms_body or "")
    confirmation = render_step(
        track="system", template="optout_confirmation", channel="sms", context=context
    )
    assert "unsubscribed" in (confirmation.sms_body or "")
    assert "http" not in (confirmation.sms_body or "")


def test_missing_variable_names_the_variable_and_template() -> None:
    context = sample_context("refinance")
    del context["borrower"]["first_name"]
    with pytest.raises(RenderError) as caught:
        render_step(track="refinance", template="intro", channel="sms", context=context)
    message = str(caught.value)
    assert "borrower.first_name" in message
    assert "refinance/intro.sms.j2" in message
    assert "\n" not in message


def test_missing_top_level_variable_in_an_included_template_names_both() -> None:
    context = sample_context("refinance", with_math=False)
    with pytest.raises(RenderError, match=r"missing variable math in refinance/intro\.txt\.j2"):
        render_step(track="refinance", template="intro", channel="email", context=context)


def test_sandbox_blocks_python_internals(folder: Path) -> None:
    _write(folder, "refinance/evil.sms.j2", "{{ ''.__class__.__mro__ }}")
    renderer = TemplateRenderer(folder)
    with pytest.raises(RenderError, match="unsafe"):
        renderer.render_step(
            track="refinance", template="evil", channel="sms", context=sample_context("refinance")
        )


def test_sandbox_blocks_changing_the_context(folder: Path) -> None:
    _write(folder, "refinance/evil.sms.j2", "{{ reason.update({'trigger': 'x'}) }}")
    context = sample_context("refinance")
    with pytest.raises(RenderError):
        TemplateRenderer(folder).render_step(
            track="refinance", template="evil", channel="sms", context=context
        )
    assert context["reason"]["trigger"] == "rate_drop"


def test_html_escapes_borrower_input_but_text_and_subject_do_not() -> None:
    context = sample_context("refinance")
    context["borrower"]["first_name"] = "<script>alert(1)</script>"
    rendered = render_step(track="refinance", template="intro", channel="email", context=context)
    assert "<script>" not in (rendered.email_html or "")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in (rendered.email_html or "")
    assert "Hi <script>alert(1)</script>," in (rendered.email_text or "")
    assert (rendered.email_subject or "").startswith("<script>")


def test_subject_cannot_be_split_into_extra_headers() -> None:
    context = sample_context("refinance")
    context["borrower"]["first_name"] = "Bob\r\nBcc: someone@example.com"
    rendered = render_step(track="refinance", template="intro", channel="email", context=context)
    assert "\r" not in (rendered.email_subject or "")
    assert "\n" not in (rendered.email_subject or "")


def test_version_hash_follows_the_template_source_not_the_borrower(folder: Path) -> None:
    renderer = TemplateRenderer(folder)

    def version(first_name: str = "Ann") -> str:
        context = sample_context("refinance")
        context["borrower"]["first_name"] = first_name
        rendered = renderer.render_step(
            track="refinance", template="intro", channel="email", context=context
        )
        return rendered.version_hash

    original = version()
    assert version("Someone Else") == original
    assert len(original) == 64
    # Editing a shared footer is a material change to every email that includes it.
    footer = folder / "_shared" / "footer.txt.j2"
    footer.write_text(footer.read_text() + "\nCall us.\n")
    changed = version()
    assert changed != original
    other = renderer.render_step(
        track="refinance", template="follow_up", channel="email", context=sample_context("x")
    )
    assert other.version_hash not in (original, changed)


def test_rendered_source_holds_every_template_text_used() -> None:
    rendered = render_step(
        track="refinance", template="intro", channel="sms", context=sample_context("refinance")
    )
    assert "refinance/intro.sms.j2" in rendered.source
    assert "_shared/signoff.sms.j2" in rendered.source
    assert "Reply STOP to opt out" in rendered.source


@pytest.mark.parametrize(
    ("track", "template", "channel"),
    [
        ("refinance", "nope", "sms"),
        ("../etc", "passwd", "sms"),
        ("refinance", "../intro", "sms"),
        ("refinance", "intro", "fax"),
    ],
)
def test_unknown_or_unsafe_template_names_fail_cleanly(
    track: str, template: str, channel: str
) -> None:
    with pytest.raises(RenderError):
        render_step(
            track=track, template=template, channel=channel, context=sample_context("refinance")
        )


# --- track definitions -----------------------------------------------------------------------


def test_shipped_tracks_cover_every_segment_with_its_trigger() -> None:
    tracks = load_tracks()
    assert {name: track.trigger for name, track in tracks.items()} == SEGMENTS
    for trigger in SEGMENTS.values():
        assert track_for_trigger(tracks, trigger) is not None


def test_refinance_track_is_sms_email_sms_email_call() -> None:
    steps = load_tracks()["refinance"].steps
    assert [(s.delay_days, s.channel, s.template) for s in steps] == [
        (0, "sms", "intro"),
        (0, "email", "intro"),
        (4, "sms", "follow_up"),
        (9, "email", "follow_up"),
        (14, "call_task", "call"),
    ]
    assert [s.number for s in steps] == [1, 2, 3, 4, 5]
    assert all(s.condition == "no_reply" for s in steps)
    assert steps[0].include_stop and not steps[2].include_stop


def test_every_track_ends_with_a_call_task_and_opens_sms_with_stop() -> None:
    for track in load_tracks().values():
        assert track.steps[-1].channel == "call_task"
        first_sms = next(s for s in track.steps if s.channel == "sms")
        assert first_sms.include_stop


def test_stop_goes_on_the_first_sms_and_every_third_after() -> None:
    steps = [{"delay_days": day, "channel": "sms", "template": "intro"} for day in range(7)]
    steps.insert(2, {"delay_days": 1, "channel": "email", "template": "intro"})
    tracks = load_tracks({"refinance": {"steps": steps}}, check_templates=False)
    sms = [s for s in tracks["refinance"].steps if s.channel == "sms"]
    assert [s.include_stop for s in sms] == [True, False, False, True, False, False, True]


def test_tracks_are_read_only() -> None:
    tracks = load_tracks()
    with pytest.raises(TypeError):
        tracks["refinance"] = tracks["stalled"]  # type: ignore[index]
    step = tracks["refinance"].steps[0]
    assert isinstance(step, Step)
    with pytest.raises(AttributeError):
        step.delay_days = 3  # type: ignore[misc]


def test_operator_override_replaces_one_track_and_keeps_the_rest(tmp_path: Path) -> None:
    config = tmp_path / "winback.toml"
    config.write_text(
        "[tracks.stalled]\n"
        "steps = [{ delay_days = 1, channel = 'email', template = 'intro', "
        "condition = 'always' }]\n"
        "[tracks.anniversary]\nenabled = false\n"
    )
    tracks = load_tracks(config)
    assert [(s.delay_days, s.condition) for s in tracks["stalled"].steps] == [(1, "always")]
    assert tracks["stalled"].trigger == "fallout_anniversary"
    assert track_for_trigger(tracks, "closing_anniversary") is None
    assert len(tracks["refinance"].steps) == 5


def test_override_may_be_a_yaml_file_or_a_whole_config_dict(tmp_path: Path) -> None:
    config = tmp_path / "winback.yml"
    config.write_text("tracks:\n  refinance:\n    description: Rates fell.\n")
    assert load_tracks(config)["refinance"].description == "Rates fell."
    whole = {"compliance": {}, "tracks": {"refinance": {"description": "From a dict."}}}
    assert load_tracks(whole)["refinance"].description == "From a dict."


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            {"refinance": {"steps": [{"delay_days": 0, "channel": "fax", "template": "intro"}]}},
            r"track 'refinance' step 1: channel 'fax' is not one of sms, email, call_task",
        ),
        (
            {"refinance": {"steps": [{"delay_day": 0, "channel": "sms", "template": "intro"}]}},
            r"track 'refinance' step 1: unknown field\(s\) delay_day",
        ),
        (
            {
                "refinance": {
                    "steps": [
                        {"delay_days": 5, "channel": "sms", "template": "intro"},
                        {"delay_days": 2, "channel": "email", "template": "intro"},
                    ]
                }
            },
            r"track 'refinance' step 2: delay_days 2 is before",
        ),
        (
            {"refinance": {"steps": [{"delay_days": -1, "channel": "sms", "template": "intro"}]}},
            r"step 1: delay_days must be a whole number >= 0",
        ),
        (
            {"refinance": {"steps": [{"delay_days": 0, "channel": "sms", "template": "../x"}]}},
            r"step 1: template must be a lower-case name",
        ),
        ({"refinance": {"steps": []}}, r"track 'refinance': steps must be a non-empty list"),
        ({"newtrack": {"steps": []}}, r"track 'newtrack': trigger None is not one of"),
        ({"refinance": {"trigger": "loan_age"}}, r"trigger loan_age already starts track"),
        ({"refinance": {"enabled": "yes"}}, r"enabled must be true or false"),
        (
            {"refinance": {"steps": [{"delay_days": 0, "channel": "sms", "template": "nope"}]}},
            r"track 'refinance' step 1: template file refinance/nope\.sms\.j2 does not exist",
        ),
    ],
)
def test_bad_track_definitions_are_refused_naming_track_and_step(
    override: dict, expected: str
) -> None:
    with pytest.raises(TrackConfigError, match=expected):
        load_tracks(override)


def test_malformed_or_missing_override_file_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "winback.toml"
    bad.write_text("[tracks.refinance\n")
    with pytest.raises(TrackConfigError, match="is malformed"):
        load_tracks(bad)
    with pytest.raises(TrackConfigError, match="cannot read track configuration"):
        load_tracks(tmp_path / "absent.toml")
