"""How real people answer a text: each phrasing posted to POST /twilio/sms over real HTTP.

One row per phrasing: what the borrower texted (after what, if anything) and what a user then
checks: our TwiML answer, consent on every channel, the suppression list, the phone's status,
the person's sequences, the stored reply and its classification, and what the loan officer
was told (COMPLIANCE.md §1-§2). One live server per backend serves the whole table; every row
is a fresh borrower with a rate-drop sequence running.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from core.consent.models import ConsentEvent
from core.inbound.models import InboundEvent
from tests.conftest import BACKENDS, _Database
from tests.inbound.texting import phone_state, sms_form, twiml_message
from tests.outreach import approved_book
from tests.web import LiveWeb, live_web
from tests.web.test_twilio_sms import CONFIRMATION, HELP_TEXT

OPTED_OUT = "opted out"
BAD_NUMBER = "opted out, phone marked bad"
OPTED_IN = "opted back in"
HELPED = "help answered"
WARM = "warm reply"

# What an iPhone sends when its owner reacts to our text (a "tapback"): our words, quoted.
OUR_TEXT = (
    "Maple Mortgage: Hi Pat, rates dropped since your loan closed. See your savings: "
    "https://winback.example.com/s/abc Larry Officer NMLS 765432. Reply STOP to opt out."
)


@dataclass(frozen=True)
class Expect:
    """What a user finds after the text."""

    outcome: str
    answer: str | None = None  # our TwiML <Message>; None: an empty <Response/>
    classification: str | None = None  # the stored reply's, when one is stored
    before: tuple[str, ...] = ()  # what the borrower texted first
    opt_out_type: str = ""  # Twilio's OptOutType field (Advanced Opt-Out), if any


def twilio_stop() -> Expect:
    """One of Twilio's own keywords: Twilio confirmed it, we must not confirm again."""
    return Expect(OPTED_OUT)


def stop() -> Expect:
    """An opt-out Twilio does not catch: our one confirmation."""
    return Expect(OPTED_OUT, CONFIRMATION)


def told() -> Expect:
    """An ambiguous opt-out: out, confirmed, and kept as an 'unknown' reply for the officer."""
    return Expect(OPTED_OUT, CONFIRMATION, classification="unknown")


def wrong_number() -> Expect:
    """Opted out and the phone marked bad (no text or call task goes to it)."""
    return Expect(BAD_NUMBER, CONFIRMATION)


def back_in(*before: str, opt_out_type: str = "") -> Expect:
    """Re-subscribed after an earlier SMS opt-out; Twilio answers its own keyword, we don't."""
    return Expect(OPTED_IN, before=before or ("STOP",), opt_out_type=opt_out_type)


def helped(*, opt_out_type: str = "") -> Expect:
    """The HELP text, unless Twilio answered (OptOutType=HELP)."""
    return Expect(HELPED, None if opt_out_type else HELP_TEXT, opt_out_type=opt_out_type)


def warm(classification: str, *, opt_out_type: str = "") -> Expect:
    """Stored as a reply, sequences stopped, the officer told; consent untouched."""
    return Expect(WARM, classification=classification, opt_out_type=opt_out_type)


PHRASES: list[tuple[str, Expect]] = [
    # Twilio's keywords, in any case, padding and punctuation.
    ("Stop", twilio_stop()),
    ("STOP.", twilio_stop()),
    (" stop ", twilio_stop()),
    ("stop!!", twilio_stop()),
    ("STOP 🛑", twilio_stop()),
    ("sTOP", twilio_stop()),
    ("\nSTOP\n", twilio_stop()),
    ("STOPALL", twilio_stop()),
    ("Unsubscribe", twilio_stop()),
    ("cancel", twilio_stop()),
    ("end", twilio_stop()),
    ("quit", twilio_stop()),
    ("revoke", twilio_stop()),
    ("optout", twilio_stop()),
    ("stop texting me", Expect(OPTED_OUT, opt_out_type="STOP")),  # Advanced Opt-Out caught it
    # The exact list of §2 that Twilio passes on to us, and keywords it cannot see.
    ("opt out", stop()),
    ("Opt-Out", stop()),
    ("STOP ALL", stop()),
    ("REMOVE", stop()),
    ("Stop please", stop()),
    ("STOP STOP", stop()),
    ("🛑", stop()),
    ("S T O P", stop()),
    ("ALTO", stop()),
    ("Basta!", stop()),
    ("no más", stop()),
    # Opt-out by intent.
    ("please stop texting me", stop()),
    ("remove me from your list", stop()),
    ("take me off this list", stop()),
    ("don't text me again", stop()),
    ("don’t text me again", stop()),
    ("dont txt me", stop()),
    ("Quit texting me", stop()),
    ("unsubscribe me", stop()),
    ("I unsubscribed already", told()),
    ("leave me alone", stop()),
    ("lose my number", stop()),
    ("F off", stop()),
    # A keyword inside other words, or "not interested": out, and the officer reads it.
    ("who is this? stop", told()),
    ("don't stop, I'm interested", told()),
    ("call me at the end of the week", told()),
    ("Can you remove the PMI?", told()),
    ("not interested", told()),
    ("Not interested.", told()),
    ("no longer interested", told()),
    ("No me interesa", told()),
    # Wrong number.
    ("wrong number", wrong_number()),
    ("wrong #", wrong_number()),
    ("Wrong num", wrong_number()),
    ("Wrong number, who is Pat?", wrong_number()),
    ("you have the wrong person", wrong_number()),
    ("I'm not the right person", wrong_number()),
    ("Número equivocado", wrong_number()),
    # HELP.
    ("HELP", helped()),
    ("info", helped()),
    ("help?", helped()),
    ("Help!", helped()),
    ("HELP", helped(opt_out_type="HELP")),
    # Back in after an opt-out.
    ("START", back_in()),
    ("unstop", back_in()),
    ("Yes", back_in()),
    ("START", back_in("please stop texting me")),
    ("UNSTOP", back_in(opt_out_type="START")),
    # Warm replies.
    ("yes call me", warm("interested")),
    ("Yes! call me tomorrow", warm("interested")),
    ("Yes", warm("interested")),  # never opted out: a yes, not a keyword
    ("YES", warm("interested", opt_out_type="START")),
    ("call me 📞", warm("interested")),
    ("Can you call after 5", warm("interested")),
    ("Busy, call me later", warm("interested")),
    ("👍", warm("interested")),
    ("ok", warm("interested")),
    ("sure", warm("interested")),
    ("Sure, no problem", warm("interested")),
    ("sí, llámame", warm("interested")),
    ("Me interesa", warm("interested")),
    (f"Liked “{OUR_TEXT}”", warm("interested")),
    ("what rate?", warm("question")),
    ("what's the rate", warm("question")),
    ("how much would I save?", warm("question")),
    ("who is this?", warm("question")),
    ("Who's this", warm("question")),
    ("New phone who dis", warm("question")),
    ("¿Cuál es la tasa?", warm("question")),
    (f"Questioned “{OUR_TEXT}”", warm("question")),
    ("not now", warm("not_now")),
    ("maybe next year", warm("not_now")),
    ("not interested right now", warm("not_now")),
    ("Not interested at this time, thanks", warm("not_now")),
    ("No thanks", warm("not_now")),
    ("I already refinanced", warm("not_now")),
    ("I sold the house", warm("not_now")),
    ("Can't talk now", warm("not_now")),
    ("👎", warm("not_now")),
    (f"Disliked “{OUR_TEXT}”", warm("not_now")),
    ("Stopping by the office tomorrow", warm("unknown")),
    ("stopped by the branch yesterday", warm("unknown")),
    ("not sure", warm("unknown")),
    ("Thanks", warm("unknown")),
    ("START", warm("unknown")),  # never opted out: nothing to undo, the officer sees it
]


def _row_id(row: tuple[str, Expect]) -> str:
    phrase, expect = row
    extra = f" after {'+'.join(expect.before)}" if expect.before else ""
    extra += f" [OptOutType={expect.opt_out_type}]" if expect.opt_out_type else ""
    return f"{phrase.strip()!r}{extra}"


@pytest.fixture(scope="module", params=BACKENDS)
def shared_web(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveWeb]:
    """One live `winback web` per backend for the whole table (each row is a fresh person)."""
    database = _Database(request.param, tmp_path_factory.mktemp("phrases"), migrate=False)
    try:
        yield from live_web(database.url)
    finally:
        database.drop()


def _post(web: LiveWeb, body: str, phone: str, opt_out_type: str = "") -> tuple[str | None, str]:
    """Text `body` as Twilio posts it; our answer and the outcome its ledger row records."""
    extra = {"OptOutType": opt_out_type} if opt_out_type else {}
    form = sms_form(body, phone, **extra)
    answer = twiml_message(web.twilio_post("/twilio/sms", form))
    with web.sessions() as session:
        outcome = session.scalar(
            select(InboundEvent.outcome).where(
                InboundEvent.idempotency_key == form["MessageSid"] + ":inbound"
            )
        )
    return answer, outcome or ""


def _last_consent(web: LiveWeb, contact_id: int, channel: str) -> tuple[str, str]:
    """(new state, source) of the person's latest consent change on `channel`."""
    with web.sessions() as session:
        event = session.scalars(
            select(ConsentEvent)
            .where(ConsentEvent.contact_id == contact_id, ConsentEvent.channel == channel)
            .order_by(ConsentEvent.id.desc())
            .limit(1)
        ).one()
        return event.new_state, event.source


@pytest.mark.parametrize(("phrase", "expect"), PHRASES, ids=[_row_id(row) for row in PHRASES])
def test_each_reply_phrasing_lands_as_a_borrower_means_it(
    shared_web: LiveWeb, phrase: str, expect: Expect
) -> None:
    web = shared_web
    book = approved_book(web.sessions, [{}])
    contact_id = book.contacts[0]
    phone = book.contact(contact_id).phone or ""
    assert phone_state(web.sessions, phone).active_sequences == 1
    for earlier in expect.before:
        assert _post(web, earlier, phone)[1] == "opt_out"
    answer, outcome = _post(web, phrase, phone, expect.opt_out_type)

    assert answer == expect.answer
    state = phone_state(web.sessions, phone)
    told = [n for n in web.router.notices if n.contact_id == contact_id]
    if expect.outcome in (OPTED_OUT, BAD_NUMBER):
        assert outcome == "opt_out"
        assert state.sms_consent == ["opted_out"] and state.email_consent == ["opted_out"]
        assert state.suppressed
        assert state.active_sequences == 0 and state.scheduled_touches == 0
        new_state, source = _last_consent(web, contact_id, "email")
        assert new_state == "opted_out" and source.startswith("sms_opt_out/")
        bad = expect.outcome == BAD_NUMBER
        assert (state.phone_status == ["bad"]) is bad
        assert (source == "sms_opt_out/wrong_number") is bad
    elif expect.outcome == OPTED_IN:
        assert outcome == "opt_in"
        assert state.sms_consent == ["granted"] and not state.suppressed
        assert _last_consent(web, contact_id, "sms") == ("granted", "keyword")
        # The email opt-out that the SMS opt-out implied is undone with it.
        assert state.email_consent == ["granted"]
        assert _last_consent(web, contact_id, "email") == ("granted", "keyword")
        assert state.active_sequences == 0  # consent again, not a new campaign
    elif expect.outcome == HELPED:
        assert outcome == "help"
        assert state.sms_consent == ["granted"] and state.active_sequences == 1
    else:
        assert outcome == "warm_reply"
        assert state.sms_consent == ["granted"] and state.email_consent == ["granted"]
        assert not state.suppressed and state.phone_status != ["bad"]
        assert state.active_sequences == 0 and state.scheduled_touches == 0

    if expect.classification is None:
        assert state.replies == [] and told == []
        return
    (reply,) = state.replies
    assert reply.body == phrase.strip() and reply.contact_id == contact_id
    assert reply.classification == expect.classification
    assert [(n.reply_id, n.classification) for n in told] == [(reply.id, reply.classification)]
    ambiguous = expect.outcome == OPTED_OUT
    assert bool((reply.details or {}).get("ambiguous_opt_out")) is ambiguous
