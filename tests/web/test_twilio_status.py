"""POST /twilio/status over real HTTP: every callback kept, each message's state moving one way.

The one-way rule, decided here: a message ends in the furthest state Twilio ever reported for
it, whatever order the callbacks came in (they are separate requests, retried on their own):
``delivered`` > ``undelivered`` > ``failed`` > ``sent``; ``queued``/``sending`` move nothing. A
late ``sent`` never undoes a final state, and a ``delivered`` receipt beats a give-up that
arrived before it (the carrier did hand it over: it counts against the person's caps).
"""

# Fixtures are imported by name, so every test argument "redefines" them.
# ruff: noqa: F811

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.audit.models import AuditEvent
from core.book.models import Contact
from core.consent.models import ConsentEvent, Suppression
from core.inbound.models import TWILIO_STATUS, DeliveryEvent, InboundEvent
from core.inbound.status import receive_status
from core.outreach.models import Message
from tests.fakes.twilio_api import FakeTwilio, fake_twilio  # noqa: F401
from tests.inbound.texting import count, delivery_events, ledger
from tests.outreach import NOW, sessions_for
from tests.web import ACCOUNT_SID, FROM_NUMBER, LiveWeb, SentText, send_texts

_tokens = itertools.count(1)


def status_form(text: SentText | str, status: str, code: str | None = None) -> dict[str, str]:
    """The form Twilio posts for one status of an outbound text (or of an unknown sid)."""
    sid, to = (text, "+14155550999") if isinstance(text, str) else (text.sid, text.phone)
    form = {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": ACCOUNT_SID,
        "MessageStatus": status,
        "SmsStatus": status,
        "From": FROM_NUMBER,
        "To": to,
        "ApiVersion": "2010-04-01",
    }
    if code is not None:
        form["ErrorCode"] = code
    return form


def callback(
    web: LiveWeb, text: SentText | str, status: str, code: str | None = None, token: str = ""
) -> None:
    """Post one signed status callback; Twilio must get a 2xx for it."""
    headers = {"I-Twilio-Idempotency-Token": token} if token else None
    response = web.twilio_post("/twilio/status", status_form(text, status, code), headers=headers)
    assert response.status_code == 200, response.text
    assert response.text == ""


def message(sessions: sessionmaker[Session], message_id: int) -> Message:
    """The outbox row as stored now."""
    with sessions() as session:
        row = session.get(Message, message_id)
        assert row is not None
        session.expunge(row)
        return row


def audit(sessions: sessionmaker[Session], action: str) -> list[AuditEvent]:
    """The audit events of one action, oldest first."""
    with sessions() as session:
        rows = list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
            )
        )
        session.expunge_all()
        return rows


@pytest.fixture
def texts(web: LiveWeb, database_url: str, fake_twilio: FakeTwilio) -> list[SentText]:
    """Three texts really sent to three people in the web process's database."""
    return send_texts(web.sessions, database_url, fake_twilio, 3)


# --- the lifecycle ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("final", "code"), [("delivered", None), ("undelivered", "30003"), ("failed", "30008")]
)
def test_each_callback_is_kept_and_moves_the_message_once(
    web: LiveWeb, texts: list[SentText], final: str, code: str | None
) -> None:
    text = texts[0]
    assert message(web.sessions, text.message_id).status == "sent"

    callback(web, text, "queued")
    assert message(web.sessions, text.message_id).status == "sent"  # nothing new to us
    callback(web, text, "sent")
    assert message(web.sessions, text.message_id).status == "sent"
    callback(web, text, final, code)

    stored = message(web.sessions, text.message_id)
    assert (stored.status, stored.error_code) == (final, code)
    assert delivery_events(web.sessions, text.sid) == [
        ("queued", text.message_id),
        ("sent", text.message_id),
        (final, text.message_id),
    ]
    assert [e.outcome for e in ledger(web.sessions, TWILIO_STATUS)] == ["queued", "sent", final]
    assert all(e.message_id == text.message_id for e in ledger(web.sessions))
    gave_up = [e.subject_id for e in audit(web.sessions, f"message.{final}")]
    assert gave_up == ([] if final == "delivered" else [str(text.message_id)])
    for other in texts[1:]:  # the others are untouched
        assert message(web.sessions, other.message_id).status == "sent"


def test_a_late_sent_never_overwrites_delivered(web: LiveWeb, texts: list[SentText]) -> None:
    text = texts[0]
    callback(web, text, "delivered")
    callback(web, text, "sent")  # Twilio's 'sent' callback, retried after the delivery receipt
    stored = message(web.sessions, text.message_id)
    assert stored.status == "delivered" and stored.error_code is None
    assert [s for s, _ in delivery_events(web.sessions, text.sid)] == ["delivered", "sent"]


@pytest.mark.parametrize(
    ("sequence", "final", "code"),
    [
        ([("delivered", None), ("sent", None), ("queued", None)], "delivered", None),
        ([("undelivered", "30003"), ("sent", None)], "undelivered", "30003"),
        ([("failed", "30008"), ("delivered", None)], "delivered", None),
        ([("delivered", None), ("failed", "30008")], "delivered", None),
        ([("undelivered", "30003"), ("delivered", None), ("sent", None)], "delivered", None),
        ([("failed", "30008"), ("undelivered", "30003")], "undelivered", "30003"),
        ([("undelivered", "30003"), ("failed", "30008")], "undelivered", "30003"),
    ],
)
def test_out_of_order_callbacks_end_in_the_furthest_state(
    web: LiveWeb,
    texts: list[SentText],
    sequence: list[tuple[str, str | None]],
    final: str,
    code: str | None,
) -> None:
    text = texts[0]
    for status, error in sequence:
        callback(web, text, status, error)
    stored = message(web.sessions, text.message_id)
    assert (stored.status, stored.error_code) == (final, code)
    assert [s for s, _ in delivery_events(web.sessions, text.sid)] == [s for s, _ in sequence]


# --- replays ------------------------------------------------------------------------------------


@pytest.mark.parametrize("tokens", ["none", "the same token", "a new token each time"])
def test_a_replayed_callback_lands_once(web: LiveWeb, texts: list[SentText], tokens: str) -> None:
    text = texts[0]
    first = f"idem-{next(_tokens)}"
    for _ in range(3):
        token = {"none": "", "the same token": first}.get(tokens, f"idem-{next(_tokens)}")
        callback(web, text, "undelivered", "30003", token=token)

    assert delivery_events(web.sessions, text.sid) == [("undelivered", text.message_id)]
    assert message(web.sessions, text.message_id).status == "undelivered"
    assert len(audit(web.sessions, "message.undelivered")) == 1
    outcomes = [e.outcome for e in ledger(web.sessions, TWILIO_STATUS)]
    if tokens == "a new token each time":  # three distinct deliveries: kept, the last two no-ops
        assert outcomes == ["undelivered", "replayed", "replayed"]
    else:  # the ledger knows the retry: it is not even written again
        assert outcomes == ["undelivered"]


# --- what error codes mean for the person ------------------------------------------------------


def _person(sessions: sessionmaker[Session], contact_id: int) -> Contact:
    with sessions() as session:
        person = session.get(Contact, contact_id)
        assert person is not None
        session.expunge(person)
        return person


def _consent_events(sessions: sessionmaker[Session], contact_id: int) -> list[ConsentEvent]:
    with sessions() as session:
        rows = list(
            session.scalars(
                select(ConsentEvent)
                .where(ConsentEvent.contact_id == contact_id)
                .order_by(ConsentEvent.id)
            )
        )
        session.expunge_all()
        return rows


def _suppressed(sessions: sessionmaker[Session], phone: str) -> str | None:
    with sessions() as session:
        return session.scalar(
            select(Suppression.reason).where(
                Suppression.kind == "phone", Suppression.value == phone
            )
        )


@pytest.mark.parametrize("status", ["failed", "undelivered"])
def test_21610_arriving_late_opts_the_person_out(
    web: LiveWeb, texts: list[SentText], status: str
) -> None:
    text = texts[0]
    callback(web, text, "sent")
    web.clock.advance(hours=6)  # the carrier's verdict comes hours later
    callback(web, text, status, "21610")

    person = _person(web.sessions, text.contact_id)
    assert person.sms_consent == "opted_out" and person.sms_consent_at == web.clock.now()
    assert person.sms_consent_source == "sms_opt_out/twilio_21610"
    assert person.email_consent == "opted_out"  # every opt-out is global (COMPLIANCE.md §1)
    sms_events = [e for e in _consent_events(web.sessions, text.contact_id) if e.channel == "sms"]
    (event,) = sms_events
    assert (event.old_state, event.new_state) == ("granted", "opted_out")
    assert event.source == "sms_opt_out/twilio_21610" and event.actor == "twilio"
    assert event.evidence is not None and "21610" in event.evidence
    assert event.at == NOW + timedelta(hours=6)
    assert _suppressed(web.sessions, text.phone) == "sms_opt_out/twilio_21610"
    assert message(web.sessions, text.message_id).error_code == "21610"
    for other in texts[1:]:
        assert _person(web.sessions, other.contact_id).sms_consent == "granted"

    callback(web, text, status, "21610", token="another-delivery")  # replayed: still one event
    assert len(_consent_events(web.sessions, text.contact_id)) == 2  # sms and email, once each


@pytest.mark.parametrize("code", ["30005", "30006"])
def test_a_number_that_cannot_take_texts_is_marked_bad(
    web: LiveWeb, texts: list[SentText], code: str
) -> None:
    text = texts[0]
    callback(web, text, "undelivered", code)
    person = _person(web.sessions, text.contact_id)
    assert person.phone_status == "bad"
    assert person.sms_consent == "granted"  # a bad number is not an opt-out
    (bad,) = audit(web.sessions, "contact.bad_number")
    assert (bad.subject_id, bad.reason) == (str(text.contact_id), f"twilio_{code}")
    assert text.phone not in str(bad.details)  # masked
    assert message(web.sessions, text.message_id).status == "undelivered"


@pytest.mark.parametrize("code", ["30003", "30004", "30007", "30008"])
def test_a_passing_carrier_trouble_is_kept_on_the_message_only(
    web: LiveWeb, texts: list[SentText], code: str
) -> None:
    text = texts[0]
    callback(web, text, "undelivered", code)
    stored = message(web.sessions, text.message_id)
    assert (stored.status, stored.error_code) == ("undelivered", code)
    person = _person(web.sessions, text.contact_id)
    assert person.phone_status == "ok" and person.sms_consent == "granted"
    assert _suppressed(web.sessions, text.phone) is None
    assert audit(web.sessions, "contact.bad_number") == []


# --- what is not ours ---------------------------------------------------------------------------


def test_an_unknown_message_sid_is_kept_and_answered(web: LiveWeb, texts: list[SentText]) -> None:
    stranger = "SM" + "f" * 32
    callback(web, stranger, "delivered")
    callback(web, stranger, "failed", "30005")  # a number we cannot tie to anyone in the book
    assert delivery_events(web.sessions, stranger) == [("delivered", None), ("failed", None)]
    outcomes = [(e.outcome, e.message_id) for e in ledger(web.sessions, TWILIO_STATUS)]
    assert outcomes == [("unmatched_delivered", None), ("unmatched_failed", None)]
    assert {message(web.sessions, t.message_id).status for t in texts} == {"sent"}


def test_a_callback_without_sid_or_status_is_kept_and_answered(web: LiveWeb) -> None:
    for form in ({"AccountSid": ACCOUNT_SID}, {"AccountSid": ACCOUNT_SID, "MessageSid": "SM1"}):
        response = web.twilio_post("/twilio/status", form)
        assert response.status_code == 200
    assert [e.outcome for e in ledger(web.sessions, TWILIO_STATUS)] == ["incomplete"] * 2
    assert count(web.sessions, DeliveryEvent) == 0


@pytest.mark.parametrize("how", ["forged signature", "wrong token", "no signature header"])
def test_a_callback_not_signed_by_twilio_gets_403_and_changes_nothing(
    web: LiveWeb, texts: list[SentText], how: str
) -> None:
    text = texts[0]
    form = status_form(text, "failed", "21610")
    if how == "forged signature":
        headers = {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}
        response = web.http.post("/twilio/status", data=form, headers=headers)
    elif how == "wrong token":
        response = web.twilio_post("/twilio/status", form, token="not-the-auth-token")
    else:
        response = web.http.post("/twilio/status", data=form)
    assert response.status_code == 403
    assert count(web.sessions, InboundEvent) == 0
    assert count(web.sessions, DeliveryEvent) == 0
    assert message(web.sessions, text.message_id).status == "sent"
    assert _person(web.sessions, text.contact_id).sms_consent == "granted"


# --- any order, any retries: the same end -------------------------------------------------------

STATUSES = ["queued", "sending", "sent", "delivered", "undelivered", "failed"]
CODES = {"undelivered": "30003", "failed": "30008"}  # codes with no effect on the person


@dataclass
class Outbox:
    """A fresh database of the test's own where texts are really sent on demand."""

    sessions: sessionmaker[Session]
    database_url: str
    twilio: FakeTwilio

    def two_texts(self) -> tuple[SentText, SentText]:
        """Two more texts just sent (hypothesis may ask for any number of examples)."""
        *_, one, two = send_texts(self.sessions, self.database_url, self.twilio, 2)
        return one, two


@pytest.fixture
def outbox(database_url: str, fake_twilio: FakeTwilio) -> Iterator[Outbox]:
    """Sessions on a fresh database (both backends) and the fake Twilio to send through."""
    sessions = sessions_for(database_url)
    yield Outbox(sessions, database_url, fake_twilio)
    sessions.kw["bind"].dispose()


def _deliver(sessions: sessionmaker[Session], text: SentText, status: str, token: str) -> None:
    headers = {"I-Twilio-Idempotency-Token": token} if token else {}
    receive_status(
        sessions=sessions, form=status_form(text, status, CODES.get(status)), headers=headers,
        now=NOW,
    )  # fmt: skip


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_order_and_any_retries_end_like_the_canonical_order(
    outbox: Outbox, data: st.DataObject
) -> None:
    sessions = outbox.sessions
    canonical_text, shuffled_text = outbox.two_texts()
    statuses = data.draw(st.lists(st.sampled_from(STATUSES), min_size=1, unique=True))
    canonical = sorted(statuses, key=STATUSES.index)
    # Each status at least once, some again (with no token, the same one, or a fresh one).
    arrivals = data.draw(st.permutations(statuses + data.draw(st.lists(st.sampled_from(statuses)))))
    tokens = data.draw(
        st.lists(st.sampled_from(["", "same", "fresh"]), min_size=len(arrivals),
                 max_size=len(arrivals))
    )  # fmt: skip

    for status in canonical:
        _deliver(sessions, canonical_text, status, "")
    for status, kind in zip(arrivals, tokens, strict=True):
        token = {"": "", "same": f"retry-{shuffled_text.sid}-{status}"}.get(
            kind, f"t{next(_tokens)}"
        )
        _deliver(sessions, shuffled_text, status, token)

    expected = message(sessions, canonical_text.message_id)
    got = message(sessions, shuffled_text.message_id)
    assert (got.status, got.error_code) == (expected.status, expected.error_code)
    furthest = max(statuses, key=_rank)
    assert got.status == (furthest if _rank(furthest) > 0 else "sent")
    kept = delivery_events(sessions, shuffled_text.sid)
    assert sorted(s for s, _ in kept) == sorted(statuses)  # each distinct status once
    assert {m for _, m in kept} == {shuffled_text.message_id}
    with sessions() as session:
        audited = session.execute(
            select(AuditEvent.action, func.count())
            .where(AuditEvent.subject_id == str(shuffled_text.message_id))
            .where(AuditEvent.action.in_(["message.undelivered", "message.failed"]))
            .group_by(AuditEvent.action)
        ).all()
    assert all(times == 1 for _, times in audited)  # a give-up is audited once at most


def _rank(status: str) -> int:
    return {"failed": 1, "undelivered": 2, "delivered": 3}.get(status, 0)
