"""One-line ephemeral answers to the person who pressed a button."""

from __future__ import annotations

from core.cards.actions import ActionResult

_DONE = {
    "claim_reply": "You claimed this reply. Call them back while it's warm.",
    "snooze_reply": "Snoozed: the card comes back in an hour.",
    "not_interested": "Recorded: not interested. Their sequences are already stopped.",
    "stop_outreach": "Outreach stopped: they get no more texts or emails from us.",
    "mark_funded": "Marked funded: the outreach that won them back is credited and their "
    "sequences have ended. Congratulations!",
}


def reply_action_answer(result: ActionResult, user: str, action_id: str) -> str:
    """What the presser reads: done, or who has it."""
    if result.changed:
        return _DONE.get(action_id, "Done.")
    if result.why == "already_closed":
        outcome = (result.outcome or "").replace("_", " ")
        by = f" by <@{result.claimed_by}>" if result.claimed_by else ""
        return f"This reply is already closed{by} ({outcome})."
    if result.why == "not_claimed":
        return "Nobody has claimed this reply yet: claim it first, then mark it funded."
    if result.claimed_by == user:
        return "You already claimed this reply."
    return f"This reply is already claimed by <@{result.claimed_by}>."
