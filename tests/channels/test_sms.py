"""The real twilio client sending through the strict fake Twilio, and each outcome mapping."""

# The fake_twilio fixture is imported by name, so every test argument "redefines" it.
# ruff: noqa: F811

from __future__ import annotations

import logging
import socket

import pytest

from core.channels.base import BAD_ADDRESS, FAILED, OPTED_OUT, RETRY, SENT, UNKNOWN
from core.channels.sms import SandboxSmsSender, TwilioSmsSender
from tests.fakes.twilio_api import Answer, FakeTwilio, fake_twilio  # noqa: F401 (fixture)

BORROWER = "+14155550123"
FROM = "+18005550199"
SERVICE = "MG" + "a" * 32
CALLBACK = "https://winback.example.com/twilio/status"


def make_sender(fake: FakeTwilio, **overrides: object) -> TwilioSmsSender:
    settings: dict[str, object] = {
        "account_sid": fake.account_sid,
        "auth_token": fake.auth_token,
        "from_number": FROM,
        "api_url": fake.url,
        "timeout": 5.0,
    }
    settings.update(overrides)
    return TwilioSmsSender(**settings)  # type: ignore[arg-type]


def test_sms_reaches_twilio_with_the_sender_number_and_status_callback(
    fake_twilio: FakeTwilio,
) -> None:
    result = make_sender(fake_twilio).send(
        to=BORROWER, body="Rates moved: see what it means", status_callback=CALLBACK
    )

    assert result.outcome == SENT
    [message] = fake_twilio.messages
    assert result.provider_id == message.sid
    assert message.sid.startswith("SM")
    assert message.account_sid == fake_twilio.account_sid
    assert (message.to, message.from_, message.body) == (
        BORROWER,
        FROM,
        "Rates moved: see what it means",
    )
    assert message.messaging_service_sid is None
    assert message.status_callback == CALLBACK


def test_messaging_service_wins_when_both_senders_are_configured(fake_twilio: FakeTwilio) -> None:
    sender = make_sender(fake_twilio, messaging_service_sid=SERVICE)

    assert sender.send(to=BORROWER, body="hello").outcome == SENT

    [message] = fake_twilio.messages
    assert message.messaging_service_sid == SERVICE
    assert message.from_ is None
    assert message.status_callback is None


def test_a_sender_is_required() -> None:
    with pytest.raises(ValueError, match="from_number"):
        TwilioSmsSender(account_sid="AC1", auth_token="t")


def test_wrong_auth_token_is_a_failure_not_a_retry(fake_twilio: FakeTwilio) -> None:
    result = make_sender(fake_twilio, auth_token="not-the-token").send(to=BORROWER, body="hi")

    assert result.outcome == FAILED
    assert result.error_code == "20003"
    assert fake_twilio.take_errors() == ["bad or missing Basic auth"]
    assert fake_twilio.messages == []


@pytest.mark.parametrize(
    ("code", "outcome"),
    [(21610, OPTED_OUT), (21211, BAD_ADDRESS), (21614, BAD_ADDRESS), (21606, FAILED)],
)
def test_twilio_error_codes_map_to_outcomes(
    fake_twilio: FakeTwilio, code: int, outcome: str
) -> None:
    fake_twilio.respond_to(BORROWER, Answer(status=400, code=code))

    result = make_sender(fake_twilio).send(to=BORROWER, body="hi")

    assert (result.outcome, result.error_code) == (outcome, str(code))
    assert result.detail and "HTTP 400" in result.detail
    assert fake_twilio.messages == []


def test_a_number_twilio_cannot_parse_is_a_bad_address(fake_twilio: FakeTwilio) -> None:
    result = make_sender(fake_twilio).send(to="4155550123", body="hi")

    assert (result.outcome, result.error_code) == (BAD_ADDRESS, "21211")


def test_only_the_programmed_number_is_refused(fake_twilio: FakeTwilio) -> None:
    fake_twilio.respond_to(BORROWER, Answer(status=400, code=21610))
    sender = make_sender(fake_twilio)

    assert sender.send(to=BORROWER, body="hi").outcome == OPTED_OUT
    assert sender.send(to="+14155550124", body="hi").outcome == SENT
    assert [message.to for message in fake_twilio.messages] == ["+14155550124"]


def test_throttling_is_retried_after_the_time_twilio_asks_for(fake_twilio: FakeTwilio) -> None:
    fake_twilio.respond_next(Answer(status=429, code=20429, retry_after="7"))
    sender = make_sender(fake_twilio)

    throttled = sender.send(to=BORROWER, body="hi")
    later = sender.send(to=BORROWER, body="hi")

    assert (throttled.outcome, throttled.retry_after) == (RETRY, 7.0)
    assert later.outcome == SENT
    assert later.retry_after is None


def test_twilio_unavailable_is_retried_after_the_time_it_asks_for(fake_twilio: FakeTwilio) -> None:
    fake_twilio.respond_next(Answer(status=503, code=20503, retry_after="30"))
    fake_twilio.respond_next(Answer(status=503, code=20503))
    sender = make_sender(fake_twilio)

    asked = sender.send(to=BORROWER, body="hi")
    default_backoff = sender.send(to=BORROWER, body="hi")

    assert (asked.outcome, asked.retry_after, asked.error_code) == (RETRY, 30.0, "20503")
    assert (default_backoff.outcome, default_backoff.retry_after) == (RETRY, None)
    assert fake_twilio.messages == []


@pytest.mark.parametrize(
    ("status", "answer"),
    [
        (500, Answer(status=500, code=20500)),
        (502, Answer(status=502, html="<html><h1>502 Bad Gateway</h1></html>")),
        (504, Answer(status=504, html="<html><h1>504 Gateway Time-out</h1></html>")),
        (504, Answer(status=504, code=20500, retry_after="5")),
    ],
    ids=["500-json", "502-gateway-page", "504-gateway-page", "504-json-with-retry-after"],
)
def test_an_ambiguous_twilio_error_is_unknown_and_not_resent(
    fake_twilio: FakeTwilio, status: int, answer: Answer
) -> None:
    # Twilio (or the gateway in front of it) may have queued the text before failing to answer.
    fake_twilio.respond_next(answer)

    result = make_sender(fake_twilio).send(to=BORROWER, body="hi")

    assert result.outcome == UNKNOWN
    assert result.detail is not None
    assert result.detail.startswith(
        f"Twilio answered {status}: the message may have been queued; not resent"
    )
    assert result.retry_after is None  # no Retry-After can make an ambiguous send safe to repeat
    assert fake_twilio.requests_seen == 1


def test_timeout_after_twilio_queued_the_message_is_unknown_and_not_resent(
    fake_twilio: FakeTwilio,
) -> None:
    fake_twilio.respond_next(Answer(delay=3.0, after_delay_still_record=True))

    result = make_sender(fake_twilio, timeout=0.3).send(to=BORROWER, body="hi")

    assert result.outcome == UNKNOWN
    assert len(fake_twilio.messages) == 1  # it did reach Twilio: resending would duplicate it
    assert fake_twilio.requests_seen == 1


def test_timeout_without_an_answer_is_unknown(fake_twilio: FakeTwilio) -> None:
    fake_twilio.respond_next(Answer(delay=3.0))

    result = make_sender(fake_twilio, timeout=0.3).send(to=BORROWER, body="hi")

    assert result.outcome == UNKNOWN
    assert fake_twilio.requests_seen == 1


def test_connection_dropped_after_the_request_is_unknown(fake_twilio: FakeTwilio) -> None:
    # The fake closes the connection without answering once the request is in.
    fake_twilio.respond_next(Answer(delay=0.01))

    result = make_sender(fake_twilio).send(to=BORROWER, body="hi")

    assert result.outcome == UNKNOWN
    assert fake_twilio.requests_seen == 1


def test_nothing_listening_is_a_safe_retry() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    sender = TwilioSmsSender(
        account_sid="AC" + "0" * 32,
        auth_token="token",
        from_number=FROM,
        api_url=f"http://127.0.0.1:{closed_port}",
        timeout=2.0,
    )

    result = sender.send(to=BORROWER, body="hi")

    assert result.outcome == RETRY
    assert result.detail and "could not reach Twilio" in result.detail


def test_sends_reuse_one_pooled_connection(fake_twilio: FakeTwilio) -> None:
    sender = make_sender(fake_twilio)

    outcomes = [sender.send(to=BORROWER, body=f"message {n}").outcome for n in range(5)]

    assert outcomes == [SENT] * 5
    assert len(fake_twilio.connections) == 1
    sender.close()


def test_logs_never_carry_the_phone_number(
    fake_twilio: FakeTwilio, caplog: pytest.LogCaptureFixture
) -> None:
    fake_twilio.respond_next(Answer(status=400, code=21610))
    caplog.set_level(logging.DEBUG)
    sender = make_sender(fake_twilio)

    assert sender.send(to=BORROWER, body="hi").outcome == OPTED_OUT
    assert sender.send(to=BORROWER, body="hi").outcome == SENT
    SandboxSmsSender().send(to=BORROWER, body="hi")

    assert BORROWER not in caplog.text
    assert "+1415***0123" in caplog.text


def test_sandbox_records_the_sms_and_reports_it_sent() -> None:
    sandbox = SandboxSmsSender()

    first = sandbox.send(to=BORROWER, body="one", status_callback=CALLBACK)
    second = sandbox.send(to=BORROWER, body="two")

    assert (first.outcome, second.outcome) == (SENT, SENT)
    assert first.provider_id and first.provider_id.startswith("SM")
    assert first.provider_id != second.provider_id
    assert [(sms.body, sms.sid) for sms in sandbox.sent] == [
        ("one", first.provider_id),
        ("two", second.provider_id),
    ]
