"""POST /twilio/sms over real HTTP: only Twilio's signed texts get in; each lands exactly once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from core.audit.models import AuditEvent
from core.inbound.models import TWILIO_SMS, InboundEvent, Reply
from core.inbound.router import ReplyNotice
from core.outreach.optout import record_opt_out
from tests.inbound.texting import (
    count,
    ledger,
    phone_state,
    sms_form,
    text,
    twiml_message,
)
from tests.outreach import approved_book
from tests.web import AUTH_TOKEN, LiveWeb, live_web

CONFIRMATION = (
    "Maple Mortgage: you are unsubscribed and will get no more messages from us. "
    "Reply START to resubscribe."
)
HELP_TEXT = (
    "Maple Mortgage (NMLS 123456) home loan updates. Help: (415) 555-0199 or "
    "maple.example.com/help. Up to 3 msgs per week. Msg & data rates may apply. "
    "Reply STOP to opt out."
)
STRANGER = "+14155550777"


def _borrower(web: LiveWeb, **fields: str) -> str:
    book = approved_book(web.sessions, [fields])
    return book.contact(book.contacts[0]).phone or ""


# --- who may post -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "how",
    ["forged signature", "wrong token", "signed for another URL", "no signature header"],
)
def test_a_text_not_signed_by_twilio_gets_403_and_changes_nothing(web: LiveWeb, how: str) -> None:
    phone = _borrower(web)
    form = sms_form("STOP", phone)
    if how == "forged signature":
        response = web.http.post(
            "/twilio/sms", data=form, headers={"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}
        )
    elif how == "wrong token":
        response = web.twilio_post("/twilio/sms", form, token="not-the-auth-token")
    elif how == "signed for another URL":
        response = web.twilio_post(
            "/twilio/sms", form, signed_url="https://attacker.example/twilio/sms"
        )
    else:
        response = web.http.post("/twilio/sms", data=form)

    assert response.status_code == 403
    assert count(web.sessions, InboundEvent) == 0
    state = phone_state(web.sessions, phone)
    assert state.sms_consent == ["granted"] and not state.suppressed
    assert state.active_sequences == 1


def test_a_signature_over_a_changed_form_is_refused(web: LiveWeb) -> None:
    phone = _borrower(web)
    signed = sms_form("yes call me", phone)
    signature = RequestValidator(AUTH_TOKEN).compute_signature(
        web.public_base_url + "/twilio/sms", signed
    )
    tampered = {**signed, "Body": "STOP"}
    response = web.http.post(
        "/twilio/sms", data=tampered, headers={"X-Twilio-Signature": signature}
    )
    assert response.status_code == 403
    assert phone_state(web.sessions, phone).sms_consent == ["granted"]


@pytest.fixture
def proxied(database_url: str) -> Iterator[LiveWeb]:
    """The process behind a TLS proxy: Twilio signs https://public.example, we serve http."""
    yield from live_web(database_url, public_base_url="https://public.example")


def test_behind_a_tls_proxy_the_public_https_url_is_what_counts(proxied: LiveWeb) -> None:
    phone = _borrower(proxied)
    assert proxied.url.startswith("http://127.0.0.1:")

    accepted = text(proxied, "STOP please", phone)
    assert twiml_message(accepted) == CONFIRMATION

    own_url = proxied.twilio_post(
        "/twilio/sms", sms_form("who is this?", phone), signed_url=proxied.url + "/twilio/sms"
    )
    assert own_url.status_code == 403  # the request's own http URL is not what Twilio signed
    assert [e.outcome for e in ledger(proxied.sessions)] == ["opt_out"]


def test_a_query_string_is_part_of_the_signed_url(proxied: LiveWeb) -> None:
    phone = _borrower(proxied)
    form = sms_form("what rate?", phone)
    url = "https://public.example/twilio/sms?region=west"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
    headers = {"X-Twilio-Signature": signature}
    assert (
        proxied.http.post("/twilio/sms?region=west", data=form, headers=headers).status_code == 200
    )
    assert proxied.http.post("/twilio/sms", data=form, headers=headers).status_code == 403


@pytest.fixture
def unkeyed(database_url: str) -> Iterator[LiveWeb]:
    """An install without TWILIO_AUTH_TOKEN."""
    yield from live_web(database_url, TWILIO_AUTH_TOKEN="")


def test_without_an_auth_token_nothing_is_accepted(unkeyed: LiveWeb) -> None:
    phone = _borrower(unkeyed)
    for token in ("", AUTH_TOKEN):
        assert (
            unkeyed.twilio_post("/twilio/sms", sms_form("STOP", phone), token=token).status_code
            == 403
        )
    assert unkeyed.http.post("/twilio/sms", data=sms_form("STOP", phone)).status_code == 403
    assert count(unkeyed.sessions, InboundEvent) == 0
    assert phone_state(unkeyed.sessions, phone).sms_consent == ["granted"]


# --- opt-out ----------------------------------------------------------------------------------


def test_stop_by_intent_opts_out_everywhere_and_confirms_once(web: LiveWeb) -> None:
    phone = _borrower(web)
    before = phone_state(web.sessions, phone)
    assert before.scheduled_touches > 0

    first = text(web, "Please stop texting me", phone)
    assert twiml_message(first) == CONFIRMATION
    after = phone_state(web.sessions, phone)
    assert after.sms_consent == ["opted_out"] and after.email_consent == ["opted_out"]
    assert after.suppressed and after.active_sequences == 0 and after.scheduled_touches == 0
    assert after.replies == []  # a clear opt-out is not a warm reply

    # A second STOP (any wording) gets no second confirmation.
    assert twiml_message(text(web, "STOP ALL", phone)) is None
    assert twiml_message(text(web, "remove me", phone)) is None
    assert web.router.notices == []
    with web.sessions() as session:
        confirmed = [
            (e.details or {})["confirmation_sent"]
            for e in session.scalars(
                select(AuditEvent).where(AuditEvent.action == "sms.opt_out_received")
            )
        ]
    assert confirmed == [True, False, False]


def test_twilio_answered_keywords_get_no_answer_of_ours(web: LiveWeb) -> None:
    one, two = _borrower(web), _borrower(web)
    # Twilio's own single-word keyword: Twilio confirmed it already.
    assert twiml_message(text(web, "STOP", one)) is None
    # OptOutType says Twilio handled it (Advanced Opt-Out), whatever the words.
    assert twiml_message(text(web, "stop texting me", two, OptOutType="STOP")) is None
    for phone in (one, two):
        state = phone_state(web.sessions, phone)
        assert state.sms_consent == ["opted_out"] and state.suppressed


def test_stop_all_is_ours_to_confirm(web: LiveWeb) -> None:
    phone = _borrower(web)
    assert twiml_message(text(web, "STOP ALL", phone)) == CONFIRMATION


def test_a_stop_from_a_number_not_in_the_book_suppresses_it(web: LiveWeb) -> None:
    assert twiml_message(text(web, "don't text me again", STRANGER)) == CONFIRMATION
    state = phone_state(web.sessions, STRANGER)
    assert state.suppressed and state.sms_consent == []


def test_wrong_number_opts_out_and_marks_the_phone_bad(web: LiveWeb) -> None:
    phone = _borrower(web)
    assert twiml_message(text(web, "Wrong number, who is Pat?", phone)) == CONFIRMATION
    state = phone_state(web.sessions, phone)
    assert state.phone_status == ["bad"] and state.sms_consent == ["opted_out"]
    assert state.suppressed and state.active_sequences == 0


def test_everyone_sharing_the_number_is_opted_out(web: LiveWeb) -> None:
    book = approved_book(web.sessions, [{"phone": "+14155550142"}, {"phone": "+14155550142"}])
    assert twiml_message(text(web, "take me off your list", "+14155550142")) == CONFIRMATION
    state = phone_state(web.sessions, "+14155550142")
    assert state.sms_consent == ["opted_out", "opted_out"]
    assert state.active_sequences == 0
    assert len(book.contacts) == 2


def test_an_ambiguous_opt_out_is_an_opt_out_and_the_officer_is_told(web: LiveWeb) -> None:
    phone = _borrower(web)
    answer = text(web, "call me at the end of the week", phone)
    assert twiml_message(answer) == CONFIRMATION  # they learn they are out, and how to return
    state = phone_state(web.sessions, phone)
    assert state.sms_consent == ["opted_out"] and state.suppressed
    (reply,) = state.replies
    assert reply.classification == "unknown"
    assert reply.body == "call me at the end of the week"
    assert (reply.details or {})["ambiguous_opt_out"] is True
    assert (reply.details or {})["matched"] == "end"
    assert web.router.notices == [ReplyNotice(reply.id, "sms", "unknown", reply.contact_id)]


# --- opt-in and help ----------------------------------------------------------------------------


def test_start_after_stop_resubscribes_without_a_text_of_ours(web: LiveWeb) -> None:
    phone = _borrower(web)
    text(web, "STOP", phone)
    assert twiml_message(text(web, "START", phone)) is None
    state = phone_state(web.sessions, phone)
    assert state.sms_consent == ["granted"] and not state.suppressed
    assert state.replies == []
    # The sequences an opt-out stopped stay stopped: START is consent, not a new campaign.
    assert state.active_sequences == 0


def test_start_with_opt_out_type_after_stop_resubscribes_silently(web: LiveWeb) -> None:
    phone = _borrower(web)
    text(web, "STOP", phone, OptOutType="STOP")
    assert twiml_message(text(web, "UNSTOP", phone, OptOutType="START")) is None
    assert phone_state(web.sessions, phone).sms_consent == ["granted"]


def test_yes_from_someone_who_never_opted_out_is_a_warm_reply(web: LiveWeb) -> None:
    phone = _borrower(web)
    # Twilio's Advanced Opt-Out marks YES as START; it is still a borrower saying yes.
    assert twiml_message(text(web, "YES", phone, OptOutType="START")) is None
    state = phone_state(web.sessions, phone)
    (reply,) = state.replies
    assert reply.classification == "interested" and state.active_sequences == 0
    assert state.sms_consent == ["granted"]
    assert [n.reply_id for n in web.router.notices] == [reply.id]


def test_start_after_an_email_unsubscribe_does_not_resubscribe(web: LiveWeb) -> None:
    book = approved_book(web.sessions, [{}])
    person = book.contact(book.contacts[0])
    with web.sessions() as session, session.begin():
        record_opt_out(
            session=session, address=person.email, channel="email", source="one_click",
            by="borrower", now=web.clock.now(),
        )  # fmt: skip
    phone = person.phone or ""
    assert phone_state(web.sessions, phone).sms_consent == ["opted_out"]
    assert twiml_message(text(web, "START", phone)) is None
    state = phone_state(web.sessions, phone)
    assert state.sms_consent == ["opted_out"]
    assert [r.body for r in state.replies] == ["START"]  # the officer sees it and can ask


def test_help_gets_the_help_text_unless_twilio_answered(web: LiveWeb) -> None:
    phone = _borrower(web)
    assert twiml_message(text(web, "HELP", phone)) == HELP_TEXT
    assert twiml_message(text(web, "info?", phone)) == HELP_TEXT
    assert twiml_message(text(web, "HELP", phone, OptOutType="HELP")) is None
    state = phone_state(web.sessions, phone)
    assert state.sms_consent == ["granted"] and state.active_sequences == 1
    assert state.replies == []


def test_the_help_text_escapes_as_xml(web: LiveWeb) -> None:
    response = text(web, "HELP", _borrower(web))
    assert "Msg &amp; data rates may apply" in response.text


# --- warm replies -----------------------------------------------------------------------------


def test_a_warm_reply_is_stored_sequences_stopped_and_routed(web: LiveWeb) -> None:
    phone = _borrower(web)
    assert twiml_message(text(web, "yes call me", phone)) is None
    state = phone_state(web.sessions, phone)
    (reply,) = state.replies
    assert reply.classification == "interested" and reply.contact_id is not None
    assert state.active_sequences == 0 and state.scheduled_touches == 0
    assert state.sms_consent == ["granted"]
    assert web.router.notices == [ReplyNotice(reply.id, "sms", "interested", reply.contact_id)]


def test_a_reply_from_a_number_not_in_the_book_is_kept_and_routed_as_unknown(web: LiveWeb) -> None:
    assert twiml_message(text(web, "who is this?", STRANGER)) is None
    (reply,) = phone_state(web.sessions, STRANGER).replies
    assert reply.contact_id is None and reply.classification == "question"
    assert web.router.notices == [ReplyNotice(reply.id, "sms", "question", None)]


def test_a_failing_router_loses_nothing(web: LiveWeb) -> None:
    def slack_is_down(notice: ReplyNotice) -> None:
        raise ConnectionError("slack is down")

    web.router.reply_received = slack_is_down  # type: ignore[method-assign]
    phone = _borrower(web)
    response = text(web, "what rate?", phone)
    assert twiml_message(response) is None
    (reply,) = phone_state(web.sessions, phone).replies
    assert reply.classification == "question"
    assert reply.routed_at is None  # it waits for `winback replies --unclaimed`


# --- exactly once -----------------------------------------------------------------------------


def test_a_replayed_webhook_lands_once(web: LiveWeb) -> None:
    phone = _borrower(web)
    form = sms_form("yes call me", phone)
    headers = {"I-Twilio-Idempotency-Token": "b7d4b6f2-retry-1"}
    first = web.twilio_post("/twilio/sms", form, headers=headers)
    again = web.twilio_post("/twilio/sms", form, headers=headers)
    assert twiml_message(first) is None and twiml_message(again) is None
    assert count(web.sessions, InboundEvent) == 1
    assert count(web.sessions, Reply) == 1
    assert len(web.router.notices) == 1


def test_without_a_token_the_message_sid_makes_a_retry_a_no_op(web: LiveWeb) -> None:
    phone = _borrower(web)
    form = sms_form("Stop please", phone)
    assert twiml_message(web.twilio_post("/twilio/sms", form)) == CONFIRMATION
    assert twiml_message(web.twilio_post("/twilio/sms", form)) is None  # no second confirmation
    (event,) = ledger(web.sessions, TWILIO_SMS)
    assert event.idempotency_key == form["MessageSid"] + ":inbound"
    assert event.outcome == "opt_out" and event.form["Body"] == "Stop please"
    assert "x-twilio-signature" in event.headers


def test_no_phone_number_in_the_logs(web: LiveWeb, caplog: pytest.LogCaptureFixture) -> None:
    phone = _borrower(web)
    with caplog.at_level("DEBUG"):
        text(web, "stop texting me", phone)
        text(web, "yes call me", STRANGER)
        text(web, "HELP", phone)
    assert caplog.records  # the process does log what happened
    for line in caplog.messages:
        assert phone not in line and STRANGER not in line
        assert phone[2:] not in line
