"""manifest.yml creates the Slack app the code needs in one paste: the command, every event a
listener waits for, the scopes of every Web API method the bot calls, one request URL."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from handlers.slack import register_all

ROOT = Path(__file__).resolve().parents[2]
# The /winback subcommands of SPEC §6.
SUBCOMMANDS = (
    "help",
    "segments",
    "segment",
    "batches",
    "approve",
    "reject",
    "stats",
    "rate",
    "pause",
    "resume",
    "whois",
    "optout",
)
HISTORY = frozenset({"channels:history", "groups:history", "im:history"})
# The bot-token scopes each Web API method needs (Slack's method pages, "Required scopes").
SCOPES_OF: dict[str, frozenset[str]] = {
    "auth.test": frozenset(),
    "chat.postMessage": frozenset({"chat:write"}),
    "chat.update": frozenset({"chat:write"}),
    "chat.postEphemeral": frozenset({"chat:write"}),
    "chat.delete": frozenset({"chat:write"}),
    "chat.getPermalink": frozenset(),
    "conversations.history": HISTORY,
    "conversations.replies": HISTORY,
    "conversations.open": frozenset({"im:write"}),
    "conversations.create": frozenset({"channels:manage", "groups:write"}),
    "conversations.invite": frozenset({"channels:manage", "groups:write"}),
    "users.lookupByEmail": frozenset({"users:read", "users:read.email"}),
    "users.info": frozenset({"users:read"}),
    "views.publish": frozenset(),
    "views.open": frozenset(),
    "views.update": frozenset(),
    "views.push": frozenset(),
    "files.upload_v2": frozenset({"files:write"}),
    "files.getUploadURLExternal": frozenset({"files:write"}),
    "files.completeUploadExternal": frozenset({"files:write"}),
    "apps.connections.open": frozenset(),  # the app-level token's connections:write, not a bot's
}
# Scopes granted ahead of the code that will use them (none now: charts use files:write).
AHEAD: frozenset[str] = frozenset()
FAMILIES = "chat|conversations|users|views|files|apps|auth|reactions|pins|team|bots|usergroups"
SDK_CALL = re.compile(rf"\.(({FAMILIES})_[A-Za-z0-9_]+)\(")
API_CALL = re.compile(r"\.api_call\(\s*[\"']([a-z]+\.[A-Za-z0-9.]+)[\"']")


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    """manifest.yml as Slack reads it."""
    return yaml.safe_load((ROOT / "manifest.yml").read_text(encoding="utf-8"))


class Listeners:
    """Stands in for the Bolt app while handlers register: records what each listens to."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []

    def __getattr__(self, kind: str) -> Callable[..., Callable[..., Any]]:
        def listen(constraint: Any = None, *args: Any, **kwargs: Any) -> Callable[..., Any]:
            self.seen.append((kind, constraint))
            return lambda *handler, **lazy: handler[0] if handler else None

        return listen

    def of(self, kind: str) -> list[Any]:
        """The constraints of every listener of `kind` (event, action, command, view…)."""
        return [constraint for seen_kind, constraint in self.seen if seen_kind == kind]


@pytest.fixture(scope="module")
def listeners() -> Listeners:
    """Every listener the handlers register."""
    recorded = Listeners()
    register_all(recorded)  # type: ignore[arg-type]
    return recorded


def web_api_methods() -> dict[str, list[str]]:
    """Every Slack Web API method called in bot/ and handlers/, with where."""
    found: dict[str, list[str]] = {}
    for package in ("bot", "handlers"):
        for path in sorted((ROOT / package).rglob("*.py")):
            source = path.read_text(encoding="utf-8")
            names = [m.group(1) for m in SDK_CALL.finditer(source)]
            methods = [name.replace("_", ".", 1) for name in names]
            methods += [m.group(1) for m in API_CALL.finditer(source)]
            for method in methods:
                found.setdefault(method, []).append(str(path.relative_to(ROOT)))
    return found


def test_the_slash_command_is_winback_and_lists_every_subcommand(
    manifest: dict[str, Any], listeners: Listeners
) -> None:
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == "/winback"
    assert listeners.of("command") == ["/winback"]
    for sub in SUBCOMMANDS:
        assert re.search(rf"\b{sub}\b", command["description"]), sub
        assert re.search(rf"(^|\| ){sub}\b", command["usage_hint"]), sub
    assert len(command["description"]) <= 2000 and len(command["usage_hint"]) <= 1000


def test_every_event_a_listener_waits_for_is_subscribed(
    manifest: dict[str, Any], listeners: Listeners
) -> None:
    subscribed = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    events = {c if isinstance(c, str) else c["type"] for c in listeners.of("event")}
    assert "app_home_opened" in events
    assert events <= subscribed, events - subscribed
    assert subscribed <= events, f"subscribed but nobody listens: {subscribed - events}"
    assert listeners.of("message") == []  # would need message.* events and history scopes
    assert listeners.of("shortcut") == [] and listeners.of("options") == []


def test_buttons_and_dialogs_reach_the_app(manifest: dict[str, Any], listeners: Listeners) -> None:
    assert listeners.of("action") and listeners.of("view")
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    home = manifest["features"]["app_home"]
    assert home["home_tab_enabled"] is True and home["messages_tab_enabled"] is True


def test_the_scopes_cover_every_web_api_method_the_bot_calls(manifest: dict[str, Any]) -> None:
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    methods = web_api_methods()
    for expected in ("chat.postMessage", "chat.update", "views.publish", "users.lookupByEmail",
                     "conversations.history", "conversations.create"):  # fmt: skip
        assert expected in methods, f"the scan no longer finds {expected}"
    unknown = {m: where for m, where in methods.items() if m not in SCOPES_OF}
    assert not unknown, f"add these methods' scopes to SCOPES_OF and manifest.yml: {unknown}"
    for method, where in methods.items():
        missing = SCOPES_OF[method] - scopes
        assert not missing, f"{method} ({where[0]}) needs {missing}"


def test_no_scope_is_granted_that_nothing_needs(manifest: dict[str, Any]) -> None:
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    needed = {"commands"} | AHEAD
    for method in web_api_methods():
        needed |= SCOPES_OF.get(method, frozenset())
    assert scopes <= needed, f"not needed: {scopes - needed}"


def test_every_url_is_the_one_slack_endpoint(manifest: dict[str, Any]) -> None:
    settings = manifest["settings"]
    urls = [
        settings["interactivity"]["request_url"],
        settings["event_subscriptions"]["request_url"],
        *(c["url"] for c in manifest["features"]["slash_commands"]),
    ]
    for url in urls:
        assert url.startswith("https://") and url.endswith("/slack/events"), url
    assert len(set(urls)) == 1


def test_socket_mode_is_off_and_the_file_says_how_to_turn_it_on(manifest: dict[str, Any]) -> None:
    assert manifest["settings"]["socket_mode_enabled"] is False
    text = (ROOT / "manifest.yml").read_text(encoding="utf-8")
    assert "SLACK_APP_TOKEN" in text and "connections:write" in text


def test_slack_accepts_the_display_information(manifest: dict[str, Any]) -> None:
    shown = manifest["display_information"]
    assert 1 <= len(shown["name"]) <= 35 and 1 <= len(shown["description"]) <= 140
    assert 175 <= len(shown["long_description"]) <= 4000
    assert re.fullmatch(r"#[0-9a-fA-F]{6}", shown["background_color"])
    assert manifest["features"]["bot_user"]["display_name"]
    assert manifest["_metadata"]["major_version"] == 1
