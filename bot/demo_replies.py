"""The demo's second half, told: borrowers text back, each warm reply's card reaches its loan
officer, the officers claim them. Every step runs through the product's own code paths: the
web app's /twilio/sms, the reply router, the posting job and the Claim button's core action."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

from bot.blocks.replies import CLASSIFICATION_WORDS
from bot.blocks.text import plain
from bot.demo_web import Answer, BorrowerPhones, CardScreen, DemoRuntime, InProcessWeb
from bot.web import create_web_app
from core.cards.posting import post_due_cards
from core.demo.replies import (
    SCRIPT,
    STRANGER,
    Claim,
    Outcome,
    Replier,
    ScriptedText,
    Tally,
    card_place,
    claim_replies,
    outcome_of,
    pick_repliers,
    stranger,
    tally,
)
from core.demo.story import Story, StoryClock
from core.privacy import mask_phone

FIRST_REPLY_AFTER = timedelta(minutes=8)  # after the last worker pass
REPLY_GAP = timedelta(minutes=2)
CLAIM_AFTER = (2, 3, 4, 5)  # minutes from a reply to its claim, in turn
OWNER = "demo"  # the demo's leases on cards, as the posting job records them


@dataclass(frozen=True)
class WarmReply:
    """A text that became a warm reply (and a card)."""

    reply_id: int
    text: ScriptedText


def texts_back(
    runtime: DemoRuntime, clock: StoryClock, screen: CardScreen, story: Story
) -> list[WarmReply]:
    """About a dozen people who got a text answer it; each text is posted, signed, to the
    in-process web app; all their cards are posted before this returns."""
    with runtime.sessions() as session:
        people = pick_repliers(session, len(SCRIPT))
        outsider = stranger(session)
    script = [*zip(people, SCRIPT, strict=False), (outsider, STRANGER)]
    story.step(
        f"{len(script)} people text back. Each text is posted to POST /twilio/sms of the web "
        "app (built in-process, as `winback web` builds it) with the X-Twilio-Signature Twilio "
        "would compute:"
    )
    warm: list[WarmReply] = []
    clock.move_to(clock.now() + FIRST_REPLY_AFTER)
    web = InProcessWeb(create_web_app(runtime))
    try:
        phones = BorrowerPhones(web, runtime.settings)
        for person, text in script:
            started = time.perf_counter()
            sid, answer = phones.text(person.phone, text.words)
            with runtime.sessions() as session:
                outcome = outcome_of(session, sid)
            story.note(f"{person.name} ({mask_phone(person.phone)}): “{text.words}”")
            if outcome.kind == "warm_reply" and outcome.reply_id is not None:
                warm.append(WarmReply(outcome.reply_id, text))
                _tell_card(runtime, screen, story, outcome, started, first=len(warm) == 1)
            elif outcome.kind == "opt_out":
                _tell_opt_out(phones, story, person, text, sid, answer, outcome)
            else:
                story.note(f"   → {outcome.kind}")
            clock.move_to(clock.now() + REPLY_GAP)
    finally:
        web.close()
    # What the web process does when it stops: the reply router finishes every post in flight.
    # The posting job then takes whatever did not land (nothing, unless something failed).
    close = getattr(runtime.reply_router, "close", None)
    if close is not None:
        close()
    post_due_cards(session_factory=runtime.sessions, options=runtime.posting_options(OWNER),
                   now=clock.now())  # fmt: skip
    for text in screen.drain():
        story.quote(text)
    return warm


def _tell_card(
    runtime: DemoRuntime,
    screen: CardScreen,
    story: Story,
    outcome: Outcome,
    started: float,
    first: bool,
) -> None:
    """The warm reply, and its card as the loan officer sees it (the first in full)."""
    kind = plain(CLASSIFICATION_WORDS.get(outcome.classification or "", "")) or "reply"
    shown = screen.next()
    with runtime.sessions() as session:
        place = card_place(session, outcome.reply_id or 0)
    if shown is None:
        story.note(f"   → warm reply ({kind}); its card waits for the posting job")
        return
    posted_at, card = shown
    stopped = f"{outcome.cancelled} scheduled touches stopped; " if outcome.cancelled else ""
    story.note(
        f"   → warm reply ({kind}); {stopped}card in {place} {posted_at - started:.2f} s after "
        "the text was posted" + (", as it appears there:" if first else ":")
    )
    if first:
        story.quote(card)
    else:
        story.note(f"     {card_summary(card)}")


def card_summary(card: str) -> str:
    """A card in one line: its title and its buttons."""
    lines = [line.strip() for line in card.splitlines() if line.strip()]
    buttons = [line for line in lines if line.startswith("[")]
    return "  ".join([lines[0], *buttons[-1:]]) if lines else ""


def _tell_opt_out(
    phones: BorrowerPhones,
    story: Story,
    person: Replier,
    text: ScriptedText,
    sid: str,
    answer: Answer,
    outcome: Outcome,
) -> None:
    """The opt-out, its one confirmation, and Twilio retrying the same webhook."""
    story.note(
        f"   → opted out of every channel at once; {outcome.cancelled} scheduled touches "
        "cancelled; "
        + ("the one confirmation, in the TwiML answer:" if answer.message else "no answer sent")
    )
    if answer.message:
        story.quote(answer.message)
    _, again = phones.text(person.phone, text.words, message_sid=sid)
    if again.status == 200 and again.message is None:
        story.note(
            "   Twilio retries that webhook (same MessageSid): already taken in, nothing "
            "changes, no second confirmation."
        )
    else:
        story.note(f"   Twilio's retry got HTTP {again.status}: {again.message or 'no message'}")


def claims(
    runtime: DemoRuntime, clock: StoryClock, screen: CardScreen, story: Story,
    warm: list[WarmReply],
) -> list[Claim]:  # fmt: skip
    """Loan officers press Claim on most cards; one card is shown as it reads afterwards."""
    wanted = [reply.reply_id for reply in warm if reply.text.claim]
    after = [CLAIM_AFTER[index % len(CLAIM_AFTER)] for index in range(len(wanted))]
    won = claim_replies(
        session_factory=runtime.sessions, posting=runtime.posting_options(OWNER),
        reply_ids=wanted, after_minutes=after,
    )  # fmt: skip
    story.step(
        f"Loan officers press Claim on {len(won)} cards: the core action the Slack button "
        "calls (one conditional update, so only one person can win), then the card re-rendered "
        "in place (chat.update in Slack):"
    )
    for claim in won:
        story.note(
            f"{claim.officer} ({claim.slack_user}) claims {claim.borrower}'s reply, "
            f"{claim.minutes} min after it arrived"
        )
    updated = screen.drain()
    if won and updated:
        story.note(f"{won[0].borrower}'s card now reads:")
        story.quote(updated[0])
    if won:
        clock.move_to(max(claim.at for claim in won) + timedelta(minutes=1))
    return won


def tell_the_rest(runtime: DemoRuntime, story: Story) -> Tally:
    """What is left waiting, and the numbers the database holds now."""
    with runtime.sessions() as session:
        counts = tally(session)
    sla = runtime.config.replies.claim_sla_minutes
    story.note(
        f"{counts.replies - counts.claimed} replies wait for a claim; past {sla} business "
        "minutes unclaimed, the worker's escalation job posts them to the team channel."
    )
    story.step(
        f"All {counts.cards} cards reached their channels ({counts.pending_cards} pending, "
        f"{counts.unrouted} replies unrouted). The rest of the batch stays in the refinance "
        f"sequence: {counts.still_scheduled} touches are scheduled for the people who neither "
        "replied nor opted out, and the next trigger finds them there."
    )
    return counts
