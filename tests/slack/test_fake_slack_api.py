"""The fake Slack Web API, driven by the real slack_sdk clients; and the signed inbound builders."""

from __future__ import annotations

import json
import threading
import time
from urllib.parse import parse_qs

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from tests.fakes.slack_api import RESPONSE_URL, UPLOAD, FakeSlack
from tests.slack.signing import (
    block_action_body,
    event_body,
    signed_headers,
    slash_command_body,
    view_submission_body,
)

CARD = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Warm reply* from Dana"}}]
REPLY = {"event_type": "warm_reply", "event_payload": {"reply_id": 7}}


def client(fake: FakeSlack, **options: object) -> WebClient:
    """The real WebClient pointed at the fake."""
    return WebClient(token=fake.token, base_url=fake.url, **options)  # type: ignore[arg-type]


def test_post_then_history_newest_first_with_metadata_only_when_asked(fake_slack):
    slack = client(fake_slack)
    first = slack.chat_postMessage(channel="C0LO", text="Dana replied", blocks=CARD, metadata=REPLY)
    second = slack.chat_postMessage(channel="C0LO", text="Sam replied")
    slack.chat_postMessage(channel="C0OTHER", text="elsewhere")

    assert first["message"]["metadata"] == REPLY and first["message"]["blocks"] == CARD
    assert float(first["ts"]) < float(second["ts"])
    plain = slack.conversations_history(channel="C0LO")["messages"]
    assert [m["text"] for m in plain] == ["Sam replied", "Dana replied"]
    assert all("metadata" not in m for m in plain)
    full = slack.conversations_history(channel="C0LO", include_all_metadata=True)
    assert full["messages"][1]["metadata"] == REPLY
    newest = slack.conversations_history(channel="C0LO", limit=1)
    assert [m["ts"] for m in newest["messages"]] == [second["ts"]] and newest["has_more"]
    after_first = slack.conversations_history(channel="C0LO", oldest=first["ts"])
    assert [m["ts"] for m in after_first["messages"]] == [second["ts"]]

    call = fake_slack.calls("chat.postMessage")[0]
    assert call.headers["Authorization"] == f"Bearer {fake_slack.token}"
    assert call.body == {
        "channel": "C0LO",
        "text": "Dana replied",
        "blocks": CARD,
        "metadata": REPLY,
    }
    assert [body["text"] for body in fake_slack.posted()] == [
        "Dana replied",
        "Sam replied",
        "elsewhere",
    ]


def test_json_fields_inside_a_form_body_are_decoded(fake_slack):
    form = {
        "channel": "C0LO",
        "text": "t",
        "blocks": json.dumps(CARD),
        "metadata": json.dumps(REPLY),
    }
    client(fake_slack).api_call("chat.postMessage", params=form)

    (body,) = fake_slack.posted()
    assert body["blocks"] == CARD and body["metadata"] == REPLY


def test_update_changes_the_stored_card_and_history(fake_slack):
    slack = client(fake_slack)
    ts = slack.chat_postMessage(channel="C0LO", text="Dana replied", blocks=CARD)["ts"]
    claimed = [{"type": "section", "text": {"type": "mrkdwn", "text": "Claimed by <@U0AMY>"}}]
    slack.chat_update(channel="C0LO", ts=ts, text="Claimed by <@U0AMY>", blocks=claimed)

    (shown,) = slack.conversations_history(channel="C0LO")["messages"]
    assert shown["ts"] == ts and shown["text"] == "Claimed by <@U0AMY>"
    assert shown["blocks"] == claimed and "edited" in shown
    slack.chat_update(channel="C0LO", ts=ts, text="text only")
    assert fake_slack.message("C0LO", ts)["blocks"] == claimed  # Slack keeps unsent blocks
    with pytest.raises(SlackApiError) as missing:
        slack.chat_update(channel="C0LO", ts="1.000001", text="x")
    assert missing.value.response["error"] == "message_not_found"


def test_500_raises_then_the_next_call_succeeds(fake_slack):
    fake_slack.fail_next("chat.postMessage", status=500)
    slack = client(fake_slack, retry_handlers=[])

    with pytest.raises(SlackApiError) as failed:
        slack.chat_postMessage(channel="C0LO", text="Dana replied")
    assert failed.value.response.status_code == 500
    assert fake_slack.messages("C0LO") == []
    slack.chat_postMessage(channel="C0LO", text="Dana replied")
    assert [m["text"] for m in fake_slack.messages("C0LO")] == ["Dana replied"]
    assert [c.status for c in fake_slack.calls("chat.postMessage")] == [500, 200]


def test_failures_count_down_per_method(fake_slack):
    fake_slack.fail_next("chat.postMessage", status=503, times=2)
    slack = client(fake_slack)  # the default client: only connection errors are retried

    slack.auth_test()  # another method is not affected
    for _ in range(2):
        with pytest.raises(SlackApiError):
            slack.chat_postMessage(channel="C0LO", text="x")
    assert slack.chat_postMessage(channel="C0LO", text="x")["ok"]


def test_429_carries_retry_after(fake_slack):
    fake_slack.rate_limit_next("chat.postMessage", retry_after=7)

    with pytest.raises(SlackApiError) as limited:
        client(fake_slack).chat_postMessage(channel="C0LO", text="x")
    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["Retry-After"] == "7"
    assert limited.value.response["error"] == "ratelimited"
    assert fake_slack.messages("C0LO") == []


def test_error_next_is_ok_false_with_http_200(fake_slack):
    fake_slack.error_next("chat.postMessage", "channel_not_found")

    with pytest.raises(SlackApiError) as failed:
        client(fake_slack).chat_postMessage(channel="C0LO", text="x")
    assert failed.value.response.status_code == 200
    assert failed.value.response["error"] == "channel_not_found"


def test_accepted_but_timed_out_leaves_the_message_stored(fake_slack):
    fake_slack.accept_then_timeout("chat.postMessage", delay=3)

    with pytest.raises(TimeoutError):
        client(fake_slack, timeout=0.3).chat_postMessage(channel="C0LO", text="Dana replied")
    history = client(fake_slack).conversations_history(channel="C0LO")["messages"]
    assert [m["text"] for m in history] == ["Dana replied"]
    assert len(fake_slack.calls("chat.postMessage")) == 1  # the client did not resend


def test_slow_method_times_the_client_out_and_still_stores(fake_slack):
    fake_slack.slow("chat.postMessage", 1)

    with pytest.raises(TimeoutError):
        client(fake_slack, timeout=0.2).chat_postMessage(channel="C0LO", text="late")
    fake_slack.wait_for("chat.postMessage")
    assert [m["text"] for m in fake_slack.messages("C0LO")] == ["late"]


def test_wait_for_sees_a_background_post(fake_slack):
    def post_later() -> None:
        time.sleep(0.1)
        slack = client(fake_slack)
        slack.chat_postMessage(channel="C0LO", text="first")
        slack.chat_postMessage(channel="C0TEAM", text="escalated")

    threading.Thread(target=post_later).start()
    call = fake_slack.wait_for("chat.postMessage", lambda c: c.body["channel"] == "C0TEAM")
    assert call.body["text"] == "escalated"
    with pytest.raises(AssertionError, match=r"no matching chat\.update"):
        fake_slack.wait_for("chat.update", timeout=0.1)


def test_lookup_by_email_found_and_not_found(fake_slack):
    fake_slack.add_user("U0AMY", "amy@broker.example", "Amy Loan")
    slack = client(fake_slack)

    found = slack.users_lookupByEmail(email="Amy@Broker.example")["user"]
    assert found["id"] == "U0AMY" and found["profile"]["email"] == "amy@broker.example"
    with pytest.raises(SlackApiError) as missing:
        slack.users_lookupByEmail(email="nobody@broker.example")
    assert missing.value.response["error"] == "users_not_found"


def test_files_upload_v2_roundtrip(fake_slack):
    csv = b"name,segment\nDana,refi\n"
    result = client(fake_slack).files_upload_v2(
        channel="C0LO", content=csv, filename="segment.csv", initial_comment="Refi segment"
    )

    (upload,) = fake_slack.uploads()
    assert result["file"]["id"] == upload.id and upload.content == csv
    assert upload.title == "segment.csv" and upload.channel == "C0LO"
    (shared,) = fake_slack.messages("C0LO")
    assert shared["text"] == "Refi segment" and shared["files"][0]["size"] == len(csv)
    methods = [c.method for c in fake_slack.calls()]
    assert methods == ["files.getUploadURLExternal", UPLOAD, "files.completeUploadExternal"]
    assert fake_slack.calls(UPLOAD)[0].headers["Authorization"] is None  # no token needed


def test_unknown_method_is_404_and_recorded_as_unexpected(fake_slack):
    with pytest.raises(SlackApiError) as unknown:
        client(fake_slack).api_call("chat.postMesage", json={"channel": "C0LO", "text": "x"})
    assert unknown.value.response.status_code == 404
    assert unknown.value.response["error"] == "unknown_method"
    (problem,) = fake_slack.take_unexpected()
    assert "chat.postMesage" in problem
    assert fake_slack.take_unexpected() == []


def test_tokens_are_required_and_of_the_right_type(fake_slack):
    with pytest.raises(SlackApiError) as no_token:
        WebClient(base_url=fake_slack.url).chat_postMessage(channel="C0LO", text="x")
    assert no_token.value.response["error"] == "not_authed"
    with pytest.raises(SlackApiError) as wrong_type:
        client(fake_slack).apps_connections_open(app_token=fake_slack.token)
    assert wrong_type.value.response["error"] == "not_allowed_token_type"
    assert len(fake_slack.take_unexpected()) == 2 and fake_slack.messages("C0LO") == []
    socket_url = client(fake_slack).apps_connections_open(app_token=fake_slack.app_token)["url"]
    assert socket_url.startswith("ws://127.0.0.1:")


def test_response_url_records_what_is_posted(fake_slack):
    url = fake_slack.response_url("segment-refi")
    answer = WebhookClient(url).send(text="12 borrowers", response_type="ephemeral")

    assert answer.status_code == 200
    assert fake_slack.responses("segment-refi") == [
        {"text": "12 borrowers", "response_type": "ephemeral"}
    ]
    assert fake_slack.calls(RESPONSE_URL)[0].path == "/response/segment-refi"
    WebhookClient(f"{fake_slack.root_url}/response/never-issued").send(text="x")
    assert len(fake_slack.take_unexpected()) == 1


def test_dm_threads_permalinks_channels_ephemerals_and_views(fake_slack):
    slack = client(fake_slack)
    dm = slack.conversations_open(users="U0AMY")["channel"]["id"]
    assert (
        dm
        == fake_slack.dm_channel("U0AMY")
        == slack.conversations_open(users=["U0AMY"])["channel"]["id"]
    )
    assert slack.chat_postMessage(channel="U0AMY", text="for Amy")["channel"] == dm

    parent = slack.chat_postMessage(channel="C0LO", text="card")["ts"]
    slack.chat_postMessage(channel="C0LO", text="claimed", thread_ts=parent)
    assert [m["text"] for m in slack.conversations_history(channel="C0LO")["messages"]] == ["card"]
    thread = slack.conversations_replies(channel="C0LO", ts=parent)["messages"]
    assert [m["text"] for m in thread] == ["card", "claimed"] and thread[0]["reply_count"] == 1
    link = slack.chat_getPermalink(channel="C0LO", message_ts=parent)["permalink"]
    assert link.endswith(f"/archives/C0LO/p{parent.replace('.', '')}")

    created = slack.conversations_create(name="winback-amy")["channel"]
    slack.conversations_invite(channel=created["id"], users=["U0AMY"])
    with pytest.raises(SlackApiError) as again:
        slack.conversations_invite(channel=created["id"], users="U0AMY")
    assert again.value.response["error"] == "already_in_channel"
    with pytest.raises(SlackApiError) as taken:
        slack.conversations_create(name="winback-amy")
    assert taken.value.response["error"] == "name_taken"

    slack.chat_postEphemeral(channel="C0LO", user="U0SAM", text="Amy has it")
    assert (
        fake_slack.ephemerals()[0]["text"] == "Amy has it"
        and len(slack.conversations_history(channel="C0LO")["messages"]) == 1
    )
    home = {"type": "home", "blocks": CARD}
    slack.views_publish(user_id="U0AMY", view=home)
    assert fake_slack.home_view("U0AMY")["blocks"] == CARD
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "Snooze"}, "blocks": []}
    slack.views_open(trigger_id="1.2.abc", view=modal)
    assert fake_slack.opened_views()[0]["trigger_id"] == "1.2.abc"


def test_malformed_messages_are_refused_as_slack_does(fake_slack):
    slack = client(fake_slack)
    cases = [
        ({"channel": "C0LO"}, "no_text"),
        ({"channel": "#general", "text": "x"}, "channel_not_found"),
        ({"channel": "C0LO", "blocks": [{"text": "no type"}]}, "invalid_blocks"),
        (
            {"channel": "C0LO", "text": "x", "metadata": {"event_type": "x"}},
            "invalid_metadata_format",
        ),
    ]
    for arguments, error in cases:
        with pytest.raises(SlackApiError) as refused:
            slack.api_call("chat.postMessage", json=arguments)
        assert refused.value.response["error"] == error
    assert fake_slack.posted() == [] and fake_slack.take_unexpected() == []


# --- signed inbound requests ---------------------------------------------------------------
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@pytest.mark.parametrize(
    "body",
    [
        slash_command_body(text="segment refi", response_url="http://127.0.0.1:1/response/x"),
        block_action_body("claim_reply", "42", "U0AMY", "C0LO", "1700000000.000100", "http://r"),
        view_submission_body("snooze_reply", {"b": {"days": {"type": "static_select"}}}),
        event_body({"type": "app_home_opened", "user": "U0AMY", "tab": "home"}),
    ],
    ids=["slash", "block_action", "view_submission", "event"],
)
def test_signed_bodies_verify_and_tampering_or_staleness_does_not(body):
    verifier = SignatureVerifier(SECRET)

    assert verifier.is_valid_request(body, signed_headers(SECRET, body))
    assert not verifier.is_valid_request(body + b"x", signed_headers(SECRET, body))
    stale = signed_headers(SECRET, body, timestamp=int(time.time()) - 6 * 60)
    assert not verifier.is_valid_request(body, stale)
    assert not verifier.is_valid_request(body, signed_headers("another-secret", body))


def test_bodies_have_the_shape_slack_sends():
    command = parse_qs(slash_command_body(text="approve 12", user_id="U0AMY").decode())
    assert command["command"] == ["/winback"] and command["text"] == ["approve 12"]
    assert signed_headers(SECRET, b"a=1")["Content-Type"] == "application/x-www-form-urlencoded"

    raw = block_action_body("approve_batch", "12", "U0AMY", "C0APPROVE", "1700000000.000200", "u")
    action = json.loads(parse_qs(raw.decode())["payload"][0])
    assert action["type"] == "block_actions" and action["container"]["type"] == "message"
    assert action["container"]["message_ts"] == "1700000000.000200"
    assert action["actions"][0]["action_id"] == "approve_batch"
    assert action["actions"][0]["value"] == "12" and action["user"]["id"] == "U0AMY"

    event = json.loads(event_body({"type": "app_home_opened", "user": "U0AMY"}))
    assert event["type"] == "event_callback" and event["event"]["user"] == "U0AMY"
    assert signed_headers(SECRET, event_body({}))["Content-Type"] == "application/json"
