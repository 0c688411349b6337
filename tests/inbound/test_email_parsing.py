"""Reading an inbound email: what the person wrote (quoted history and signatures cut, as
Gmail, Outlook and Apple Mail really quote), auto-replies, opt-out words, reply tokens."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.inbound.email_text import (
    auto_reply_reason,
    html_to_text,
    ledger_key,
    parse_headers,
    read_mail,
    recipients,
    reply_text,
    reply_tokens,
    wants_out,
)

GMAIL = (
    "Yes, please call me Thursday.\r\n\r\nPat\r\n\r\n"
    "On Thu, Sep 24, 2026 at 11:00 AM Larry Officer from Maple Mortgage <\r\n"
    "reply+MTIz.abc.def@maple.example.com> wrote:\r\n\r\n"
    "> Hi Pat,\r\n> To stop these emails, unsubscribe here.\r\n"
)
OUTLOOK_MOBILE = (
    "What rate could I get on a 15 year?\r\n\r\nGet Outlook for iOS<https://aka.ms/o0ukef>\r\n"
    "________________________________\r\n"
    "From: Larry Officer <reply+x@maple.example.com>\r\n"
    "Sent: Thursday, September 24, 2026 11:00:00 AM\r\nTo: Pat Doe <pat@example.com>\r\n"
    "Subject: Pat, your rate\r\n\r\nHi Pat, Unsubscribe\r\n"
)
OUTLOOK_ORIGINAL = (
    "Who is this?\n\n-----Original Message-----\nFrom: Larry Officer\n"
    "Sent: Thursday, September 24, 2026 11:00 AM\nSubject: Pat, your rate\n\nremove me\n"
)
APPLE_MAIL = (
    "Sounds good, call me after 5\n\nSent from my iPhone\n\n"
    "> On Sep 24, 2026, at 11:00 AM, Larry Officer <reply+x@maple.example.com> wrote:\n"
    "> \n> Hi Pat,\n> Unsubscribe\n"
)
SIGNATURE = "Call me please.\n\n-- \nPat Doe\n(415) 555-0123\n"
SPANISH = (
    "Sí, llámeme.\n\nEl jue, 24 sept 2026 a las 11:00, Larry Officer "
    "(<reply+x@maple.example.com>) escribió:\n> Hola\n"
)


@pytest.mark.parametrize(
    ("raw", "written"),
    [
        (GMAIL, "Yes, please call me Thursday.\n\nPat"),
        (OUTLOOK_MOBILE, "What rate could I get on a 15 year?"),
        (OUTLOOK_ORIGINAL, "Who is this?"),
        (APPLE_MAIL, "Sounds good, call me after 5"),
        (SIGNATURE, "Call me please."),
        (SPANISH, "Sí, llámeme."),
        ("Just the reply, nothing quoted.", "Just the reply, nothing quoted."),
    ],
    ids=[
        "gmail",
        "outlook-mobile",
        "outlook-original",
        "apple-mail",
        "signature",
        "spanish",
        "plain",
    ],
)
def test_quoted_history_and_signatures_are_cut(raw: str, written: str) -> None:
    assert reply_text(raw) == written


@pytest.mark.parametrize("raw", [GMAIL, OUTLOOK_MOBILE, OUTLOOK_ORIGINAL, APPLE_MAIL])
def test_our_own_unsubscribe_words_in_the_quote_are_not_an_opt_out(raw: str) -> None:
    assert wants_out("Re: Pat, your rate", reply_text(raw)) is None


def test_the_gmail_html_quote_is_left_out_when_there_is_no_text_part() -> None:
    html = (
        '<div dir="ltr">Yes call me<br>Pat</div><br><div class="gmail_quote">'
        "<div>On Thu, Sep 24, 2026 Larry wrote:</div><blockquote>unsubscribe</blockquote></div>"
    )

    assert html_to_text(html) == "Yes call me\nPat"


@pytest.mark.parametrize(
    ("subject", "body", "words"),
    [
        ("Re: Pat, your rate", "Unsubscribe", "unsubscribe"),
        ("Re: Pat, your rate", "Please remove me from your list.", "remove me"),
        ("Re: Pat, your rate", "stop emailing me", "stop emailing"),
        ("Re: Pat, your rate", "Please take me off your mailing list, thanks", "take me off"),
        ("Re: Pat, your rate", "STOP", "stop"),
        ("Re: Pat, your rate", "Thanks but no.\nDo not email me again.", "do not email"),
        ("Unsubscribe", "", "unsubscribe"),
        ("RE: Fwd: STOP", "", "stop"),
        ("Re: Pat, your rate", "I want to opt out", "opt out"),
    ],
)
def test_asking_to_stop_is_an_opt_out(subject: str, body: str, words: str) -> None:
    assert wants_out(subject, body) == words


@pytest.mark.parametrize(
    "body",
    [
        "Yes call me at the end of the week",
        "Can we talk? I might cancel my other application.",
        "What rate could I get?",
        "Not now, maybe next year.",
        "Who is this?",
    ],
)
def test_ordinary_sentences_with_a_keyword_inside_are_replies(body: str) -> None:
    assert wants_out("Re: Pat, your rate", body) is None


def _headers(text: str):  # type: ignore[no-untyped-def]
    return parse_headers(text)


@pytest.mark.parametrize(
    ("headers", "subject", "sender", "reason"),
    [
        ("Auto-Submitted: auto-replied\n", "Re: your rate", "pat@example.com", "auto_submitted"),
        ("Auto-Submitted: auto-generated\n", "Hi", "pat@example.com", "auto_submitted"),
        ("X-Autoreply: yes\n", "Re: your rate", "pat@example.com", "x-autoreply"),
        ("X-Autorespond: 1\n", "Re: your rate", "pat@example.com", "x-autorespond"),
        ("Precedence: bulk\n", "Re: your rate", "pat@example.com", "precedence"),
        ("Precedence: auto_reply\n", "Re: your rate", "pat@example.com", "precedence"),
        ("Precedence: junk\n", "Re: your rate", "pat@example.com", "precedence"),
        ("", "Out of Office: back Monday", "pat@example.com", "auto_reply_subject"),
        ("", "Automatic reply: Pat, your rate", "pat@example.com", "auto_reply_subject"),
        ("", "Autoreply: away", "pat@example.com", "auto_reply_subject"),
        ("", "Undeliverable: Pat, your rate", "pat@example.com", "auto_reply_subject"),
        ("", "Re: your rate", "MAILER-DAEMON@mx.example.com", "bounce"),
        ("", "Re: your rate", "postmaster@example.com", "bounce"),
        ("Return-Path: <>\n", "Re: your rate", "pat@example.com", "bounce"),
    ],
)
def test_machines_answering_are_recognised(
    headers: str, subject: str, sender: str, reason: str
) -> None:
    assert auto_reply_reason(_headers(headers), subject, sender) == reason


@pytest.mark.parametrize(
    ("headers", "subject"),
    [
        ("Auto-Submitted: no\n", "Re: your rate"),
        ("Precedence: normal\n", "Re: out of the office soon?"),
        ("", "Re: Pat, your rate"),
    ],
)
def test_a_person_writing_is_not_an_auto_reply(headers: str, subject: str) -> None:
    assert auto_reply_reason(_headers(headers), subject, "pat@example.com") is None


def test_the_reply_token_is_read_from_the_envelope_and_the_to_header() -> None:
    form = {
        "to": '"Larry Officer" <reply+MTIz.k3x.sig@maple.example.com>, other@example.com',
        "cc": "spouse@example.com",
        "envelope": '{"to": ["reply+NDU2.k3x.sig2@maple.example.com"], "from": "pat@example.com"}',
    }

    found = recipients(form, parse_headers(""))

    assert found[0] == "reply+NDU2.k3x.sig2@maple.example.com"
    assert reply_tokens(found) == ["NDU2.k3x.sig2", "MTIz.k3x.sig"]


def test_the_ledger_key_is_the_message_id_else_a_digest_of_what_was_written() -> None:
    with_id = {"headers": "Message-ID: <abc@mail.example.com>\n", "from": "pat@example.com"}
    without = {"from": "pat@example.com", "to": "reply+x@m.example", "text": "yes"}

    assert ledger_key(with_id, read_mail(with_id)) == "message-id:<abc@mail.example.com>"
    key = ledger_key(without, read_mail(without))
    assert key.startswith("digest:")
    assert key == ledger_key(dict(without), read_mail(dict(without)))
    changed = {**without, "text": "no"}
    assert ledger_key(changed, read_mail(changed)) != key


def test_a_sendgrid_form_is_read_whole() -> None:
    form = {
        "from": "Pat Doe <Pat.Doe@Example.com>",
        "to": "reply+MTIz.k3x.sig@maple.example.com",
        "subject": "Re: Pat, your rate",
        "text": GMAIL,
        "headers": "Message-ID: <m1@mail.example.com>\nFrom: Pat Doe <Pat.Doe@Example.com>\n",
    }

    mail = read_mail(form)

    assert mail.sender == "pat.doe@example.com"
    assert mail.message_id == "<m1@mail.example.com>"
    assert mail.body == "Yes, please call me Thursday.\n\nPat"
    assert mail.auto_reply is None


@given(
    st.dictionaries(
        st.sampled_from(["from", "to", "subject", "text", "html", "headers", "envelope", "cc"]),
        st.text(max_size=300),
    )
)
def test_any_form_at_all_is_read_without_an_error(form: dict[str, str]) -> None:
    mail = read_mail(form)
    assert isinstance(mail.body, str)
    assert ledger_key(form, mail)
