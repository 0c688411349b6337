"""`GET /u/{token}` and `POST /u/{token}` over real HTTP: the page never changes anything;
RFC 8058 one-click (its body, an empty body, no Content-Type) stops emails only, at once, with
no cookie; "stop everything" stops every channel; a second POST changes nothing; a tampered or
unknown token gets a friendly 400 page and never a redirect."""

# Fixtures are imported by name, so every test argument "redefines" them.
# ruff: noqa: F811

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, select

from core.book.models import GRANTED, OPTED_OUT
from core.consent.models import ConsentEvent, Suppression
from core.inbound.models import UNSUBSCRIBE
from core.outreach.context import Links
from core.outreach.models import Enrollment
from core.privacy import mask_email
from core.tokens import SAVINGS, sign
from tests.outreach import NOW, Book, SmtpServer, approved_book, smtp_server  # noqa: F401
from tests.web import SECRET_KEY, LiveWeb
from tests.web.emailing import hrefs, ledger, path_of, send_emails

ONE_CLICK = {"content": b"List-Unsubscribe=One-Click",
             "headers": {"Content-Type": "application/x-www-form-urlencoded"}}  # fmt: skip


def _book(web: LiveWeb) -> Book:
    """One borrower with texts and emails both scheduled (both consents granted)."""
    return approved_book(web.sessions, [{"email": "pat@example.com", "phone": "+14155550123"}])


def _path(web: LiveWeb, contact_id: int) -> str:
    return path_of(Links(web.public_base_url, SECRET_KEY).unsubscribe(contact_id, NOW), web)


def _state(web: LiveWeb, book: Book) -> dict[str, Any]:
    """Everything an unsubscribe may change, to compare before and after."""
    person = book.contact(book.contacts[0])
    with web.sessions() as session:
        listed = sorted(session.execute(select(Suppression.kind, Suppression.value)).all())
        consent_events = session.scalar(select(ConsentEvent.id).order_by(ConsentEvent.id.desc()))
        enrollments = [e.status for e in session.scalars(select(Enrollment))]
    return {
        "email": person.email_consent,
        "sms": person.sms_consent,
        "suppressed": listed,
        "last_consent_event": consent_events,
        "enrollments": enrollments,
        "messages": [(m.channel, m.status) for m in book.messages()],
        "ledger": len(ledger(web, UNSUBSCRIBE)),
    }


def test_the_page_offers_both_choices_and_a_get_changes_nothing(web: LiveWeb) -> None:
    book = _book(web)
    before = _state(web, book)

    pages = [web.http.get(_path(web, book.contacts[0])) for _ in range(3)]

    for page in pages:
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "set-cookie" not in page.headers
    html = pages[0].text
    assert '<form method="post"' in html and "<script" not in html
    assert 'value="email" checked' in html and 'value="all">' in html
    assert "Stop emails" in html and "Stop everything (texts and calls too)" in html
    assert mask_email("pat@example.com") in html and "pat@example.com" not in html
    assert _state(web, book) == before


@pytest.mark.parametrize(
    "request_kwargs",
    [ONE_CLICK, {"content": b""}, {"content": b"", "headers": {"Content-Type": ""}}, {}],
    ids=["rfc8058-body", "empty-body", "empty-content-type", "no-body"],
)
def test_one_click_stops_emails_only_at_once_without_a_cookie(
    web: LiveWeb, request_kwargs: dict[str, Any]
) -> None:
    book = _book(web)
    contact_id = book.contacts[0]

    response = web.http.post(_path(web, contact_id), **request_kwargs)

    assert response.status_code == 200
    assert "set-cookie" not in response.headers and "location" not in response.headers
    person = book.contact(contact_id)
    assert person.email_consent == OPTED_OUT
    assert person.sms_consent == GRANTED  # SPEC §5: one-click unsubscribes from email
    messages = {(m.channel, m.step): m.status for m in book.messages(contact_id)}
    assert messages[("email", 2)] == messages[("email", 4)] == "cancelled"
    assert messages[("sms", 1)] == messages[("sms", 3)] == "scheduled"
    assert messages[("call_task", 5)] == "scheduled"
    with web.sessions() as session:
        listed = sorted(session.execute(select(Suppression.kind, Suppression.value)).all())
    assert listed == [("email", "pat@example.com")]
    (row,) = ledger(web, UNSUBSCRIBE)
    assert (row.idempotency_key, row.contact_id) == (f"contact:{contact_id}:email:1", contact_id)


def test_a_one_click_request_sends_no_content_type_when_told_to(web: LiveWeb) -> None:
    book = _book(web)
    request = web.http.build_request("POST", _path(web, book.contacts[0]))
    assert "content-type" not in request.headers  # the case above really had none

    assert web.http.send(request).status_code == 200
    assert book.contact(book.contacts[0]).email_consent == OPTED_OUT


def test_stop_everything_from_the_page_ends_every_channel(web: LiveWeb) -> None:
    book = _book(web)
    contact_id = book.contacts[0]

    response = web.http.post(_path(web, contact_id), data={"scope": "all"})

    assert response.status_code == 200
    assert "You are unsubscribed" in response.text and "text" in response.text
    assert "set-cookie" not in response.headers
    person = book.contact(contact_id)
    assert (person.email_consent, person.sms_consent) == (OPTED_OUT, OPTED_OUT)
    assert {m.status for m in book.messages(contact_id)} == {"cancelled"}
    with web.sessions() as session:
        assert [e.status for e in session.scalars(select(Enrollment))] == ["stopped"]
        listed = sorted(session.execute(select(Suppression.kind, Suppression.value)).all())
    assert listed == [("email", "pat@example.com"), ("phone", "+14155550123")]


def test_stop_emails_from_the_page_is_the_default_and_shows_the_done_page(web: LiveWeb) -> None:
    book = _book(web)

    response = web.http.post(_path(web, book.contacts[0]), data={"scope": "email"})

    assert response.status_code == 200
    assert "You are unsubscribed" in response.text
    person = book.contact(book.contacts[0])
    assert (person.email_consent, person.sms_consent) == (OPTED_OUT, GRANTED)


@pytest.mark.parametrize("scope", ["email", "all"])
def test_a_second_post_changes_nothing_and_still_answers_200(web: LiveWeb, scope: str) -> None:
    book = _book(web)
    path = _path(web, book.contacts[0])
    web.http.post(path, data={"scope": scope})
    after_first = _state(web, book)

    again = [web.http.post(path, data={"scope": scope}), web.http.post(path, **ONE_CLICK)]

    assert [response.status_code for response in again] == [200, 200]
    assert _state(web, book) == after_first
    assert after_first["ledger"] == 1


def test_after_a_resubscription_a_new_unsubscribe_is_honored(web: LiveWeb) -> None:
    book = _book(web)
    path = _path(web, book.contacts[0])
    web.http.post(path, **ONE_CLICK)
    with web.sessions() as session, session.begin():  # staff re-subscribe her by hand
        session.get_one(
            type(book.contact(book.contacts[0])), book.contacts[0]
        ).email_consent = GRANTED
        session.execute(Suppression.__table__.delete())

    assert web.http.post(path, **ONE_CLICK).status_code == 200

    assert book.contact(book.contacts[0]).email_consent == OPTED_OUT
    keys = [row.idempotency_key for row in ledger(web, UNSUBSCRIBE)]
    assert keys == [f"contact:{book.contacts[0]}:email:1", f"contact:{book.contacts[0]}:email:2"]


def _tampered(web: LiveWeb, contact_id: int) -> list[str]:
    good = _path(web, contact_id)
    token = good.rsplit("/", 1)[1]
    subject, issued, signature = token.split(".")
    savings = sign(secret=SECRET_KEY, purpose=SAVINGS, subject=contact_id, issued_at=NOW)
    return [
        good[:-1] + ("A" if good[-1] != "A" else "B"),  # one character of the signature
        f"/u/{'Mg'}.{issued}.{signature}",  # another contact's id, same signature
        f"/u/{subject}.{issued}",  # cut short when copied
        f"/u/{savings}",  # a genuine token made for the savings page
        "/u/not-a-token",
        "/u/https%3A%2F%2Fevil.example",
    ]


def test_tampered_tokens_get_a_friendly_400_and_never_a_redirect(web: LiveWeb) -> None:
    book = _book(web)
    before = _state(web, book)

    for path in _tampered(web, book.contacts[0]):
        for response in (web.http.get(path), web.http.post(path, **ONE_CLICK)):
            assert response.status_code == 400, path
            assert "location" not in response.headers
            assert "This link does not work" in response.text
    assert _state(web, book) == before


def test_a_genuine_token_for_someone_not_in_the_book_gets_400(web: LiveWeb) -> None:
    path = _path(web, 987654)

    assert web.http.get(path).status_code == 400
    assert web.http.post(path, **ONE_CLICK).status_code == 400
    assert ledger(web, UNSUBSCRIBE) == []


def test_a_database_failure_answers_5xx_and_writes_nothing(web: LiveWeb) -> None:
    book = _book(web)
    before = _state(web, book)

    def fail_on_suppression(_conn, _cursor, statement: str, *_args) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("INSERT INTO SUPPRESSIONS"):
            raise RuntimeError("the database went away")

    event.listen(web.runtime.engine, "before_cursor_execute", fail_on_suppression)
    try:
        failed = web.http.post(_path(web, book.contacts[0]), **ONE_CLICK)
    finally:
        event.remove(web.runtime.engine, "before_cursor_execute", fail_on_suppression)

    assert failed.status_code == 503
    assert _state(web, book) == before
    assert web.http.post(_path(web, book.contacts[0]), **ONE_CLICK).status_code == 200
    assert book.contact(book.contacts[0]).email_consent == OPTED_OUT


def test_the_links_of_a_really_sent_email_unsubscribe(
    web: LiveWeb, smtp_server: SmtpServer
) -> None:
    sent = send_emails(web, smtp_server, [{"email": "pat@example.com"}])
    header_url = sent.unsubscribe_url()
    assert str(sent.emails[0]["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    # The footer's link is the same untracked /u/ URL, in both parts.
    assert header_url in hrefs(sent.html()) and header_url in sent.text()

    page = web.http.get(path_of(header_url, web))
    one_click = web.http.post(path_of(header_url, web), **ONE_CLICK)

    assert (page.status_code, one_click.status_code) == (200, 200)
    assert sent.book.contact(sent.book.contacts[0]).email_consent == OPTED_OUT
