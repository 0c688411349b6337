"""`list_replies`: warm replies newest first, masked, with the state a loan officer left them in."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy.orm import Session

from core.inbound.listing import list_replies
from tests.inbound.stored import received
from tests.outreach import NOW
from tests.triggers.factories import make_contact, make_lo

JSON_KEYS = [
    "id", "received_at", "channel", "contact_id", "name", "address", "classification", "text",
    "state", "routed_at", "claimed_by", "claimed_at", "outcome", "outcome_at",
]  # fmt: skip


def test_newest_first_with_names_and_strangers(session: Session) -> None:
    pat = make_contact(session, lo=make_lo(session), first_name="Pat", last_name="Quinn")
    received(session, sender=pat.phone, body="Yes call me", contacts=[pat], now=NOW)
    received(session, sender="+13125550111", body="who is this?", now=NOW + timedelta(minutes=5))
    received(session, sender=pat.email, body="Not now, thanks", contacts=[pat],
             channel="email", now=NOW + timedelta(minutes=9))  # fmt: skip

    lines = list_replies(session)

    assert [line.text for line in lines] == ["Not now, thanks", "who is this?", "Yes call me"]
    assert [line.name for line in lines] == ["Pat Quinn", None, "Pat Quinn"]
    assert [line.contact_id for line in lines] == [pat.id, None, pat.id]
    assert [line.classification for line in lines] == ["not_now", "question", "interested"]
    assert [line.channel for line in lines] == ["email", "sms", "sms"]
    assert lines[1].address == "+1312***0111"
    assert lines[0].address.startswith("p***@e***")
    assert lines[0].received_at == NOW + timedelta(minutes=9)


def test_no_clear_address_in_the_json(session: Session) -> None:
    pat = make_contact(session)
    received(session, sender=pat.phone, body="call me at 5", contacts=[pat], now=NOW)
    received(session, sender=pat.email, body="ok", contacts=[pat], channel="email", now=NOW)

    payload = json.dumps([line.as_json() for line in list_replies(session)])

    assert pat.phone not in payload and pat.phone[2:] not in payload
    assert pat.email not in payload


def test_json_shape_is_stable(session: Session) -> None:
    received(session, sender="+13125550111", body="what rate?", now=NOW)

    (line,) = [line.as_json() for line in list_replies(session)]

    assert list(line) == JSON_KEYS
    assert line["received_at"] == NOW.isoformat()
    assert line["state"] == "unclaimed"
    assert line["claimed_by"] is None and line["routed_at"] is None


def test_unclaimed_leaves_out_claimed_and_closed_replies(session: Session) -> None:
    open_reply = received(session, sender="+13125550111", body="yes", now=NOW)
    claimed = received(session, sender="+13125550112", body="sure", now=NOW)
    closed = received(session, sender="+13125550113", body="no thanks", now=NOW)
    claimed.claimed_by, claimed.claimed_at = "U0LARRY", NOW + timedelta(minutes=2)
    closed.outcome, closed.outcome_at = "not_interested", NOW + timedelta(minutes=3)
    session.flush()

    assert [line.id for line in list_replies(session, unclaimed=True)] == [open_reply.id]
    states = {line.id: line.state for line in list_replies(session)}
    assert states == {open_reply.id: "unclaimed", claimed.id: "claimed",
                      closed.id: "not_interested"}  # fmt: skip


def test_nothing_yet(session: Session) -> None:
    assert list_replies(session) == []
    assert list_replies(session, unclaimed=True) == []
