"""`winback batch show`, `winback preview` and the evaluation summary, as a manager runs them."""

from __future__ import annotations

from pathlib import Path

from tests.book.helpers import csv_bytes
from tests.cli.conftest import Winback
from tests.cli.test_campaigns_cli import NOW, person

NIGHT = "2026-09-25T07:30:00Z"  # 00:30 in California: quiet hours


def book(winback: Winback, tmp_path: Path) -> None:
    """Three rate-drop candidates at 5.5 %, one of them without SMS consent; a 3-year loan."""
    rows = [
        person(1),  # 6.5 % funded 2021
        person(2, loan_amount="500000", property_value="700000", first_name="Ana"),
        person(3, sms_consent="no", first_name="Noel", last_name="Text"),
        person(4, note_rate="5.0", funded_date="2023-09-20", first_payment_date="2023-11-01"),
    ]
    path = tmp_path / "book.csv"
    path.write_bytes(csv_bytes(rows))
    winback.json("import", str(path), "--now", NOW)
    winback.json("rates", "set", "5.5", "--now", NOW)


def rate_drop_batch(winback: Winback) -> int:
    """Evaluate; the id of the pending rate-drop batch."""
    created = winback.json("evaluate", "--now", NOW)["batches"]
    (batch,) = [b for b in created if b["trigger"] == "rate_drop"]
    assert batch["status"] == "pending_approval"
    return batch["id"]


def test_batch_show_lists_members_counts_holds_today_and_renders_samples(
    winback: Winback, tmp_path: Path
) -> None:
    book(winback, tmp_path)
    batch_id = rate_drop_batch(winback)
    shown = winback.json("batch", "show", str(batch_id), "--now", NOW)
    assert (shown["trigger"], shown["status"], shown["size"]) == (
        "rate_drop",
        "pending_approval",
        3,
    )
    assert shown["why"]["offer"]["rate"].startswith("5.5")
    assert shown["why"]["offer"]["as_of"] == "2026-09-24"
    assert shown["why"]["thresholds"]["threshold_points"] == "0.75"
    members = shown["members"]
    assert members[0]["name"] == "Ana Doe"  # the largest loan saves the most
    assert {m["name"] for m in members} == {"Ana Doe", "Jane Doe", "Noel Text"}
    savings = [float(m["monthly_savings"]) for m in members]
    assert savings == sorted(savings, reverse=True) and savings[-1] >= 100
    assert all(m["note_rate"].startswith("6.5") and m["break_even_months"] for m in members)
    assert all(m["loan_officer"] == "Larry Officer" for m in members)
    assert shown["today"] == {"channel": "sms", "send": 2, "held": {},
                              "suppressed": {"no_sms_consent": 1}, "render_failed": 0}  # fmt: skip
    sms, email = shown["samples"]
    assert (sms["channel"], sms["name"], sms["decision"]) == ("sms", "Ana Doe", "send")
    assert "Reply STOP" in sms["body"] and "/s/" in sms["body"]
    assert email["channel"] == "email" and "Ana" in email["subject"]
    assert "$524.36" in email["body"]  # the figures a borrower reads, computed exactly

    text = winback("batch", "show", str(batch_id), "--now", NOW)
    assert text.exit_code == 0, text.output
    out = text.stdout
    assert "why now: offer 5.50 % (30y) of 2026-09-24" in out
    assert "threshold: note rate 0.75 point or more above the offer" in out
    header = next(line for line in out.splitlines() if line.startswith("name "))
    ana = next(line for line in out.splitlines() if line.startswith("Ana Doe"))
    assert ana.index("$524") + 4 == header.index("savings/mo") + len("savings/mo")  # aligned
    assert "2 would be sent; suppressed: no_sms_consent 1" in out
    assert "sample sms to Ana Doe" in out and "sample email to Ana Doe" in out
    assert "  subject: Ana, rates have come down" in out
    # Nothing was sent or enrolled by looking.
    statuses = {b["id"]: b["status"] for b in winback.json("batches")["batches"]}
    assert statuses[batch_id] == "pending_approval"
    assert winback("batch", "show", "999").exit_code == 2


def test_batch_show_shows_the_top_20_and_all_with_all(winback: Winback, tmp_path: Path) -> None:
    rows = [person(n, first_name=f"P{n}") for n in range(1, 23)]
    path = tmp_path / "book.csv"
    path.write_bytes(csv_bytes(rows))
    winback.json("import", str(path), "--now", NOW)
    winback.json("rates", "set", "5.5", "--now", NOW)
    batch_id = rate_drop_batch(winback)
    assert len(winback.json("batch", "show", str(batch_id), "--now", NOW)["members"]) == 20
    everyone = winback.json("batch", "show", str(batch_id), "--all", "--now", NOW)
    assert len(everyone["members"]) == 22 and everyone["today"]["send"] == 22


def test_preview_by_phone_renders_the_next_touch_and_holds_it_at_night(
    winback: Winback, tmp_path: Path
) -> None:
    book(winback, tmp_path)
    batch_id = rate_drop_batch(winback)
    assert winback("preview", "(415) 867-5302", "--now", NOW).exit_code == 2  # not enrolled yet
    winback.json("approve", str(batch_id), "--by", "maria", "--now", NOW)
    (night,) = winback.json("preview", "(415) 867-5302", "--now", NIGHT)["previews"]
    assert (night["name"], night["track"], night["step"], night["channel"]) == (
        "Ana Doe", "refinance", 1, "sms",
    )  # fmt: skip
    assert night["decision"] == "hold" and night["rule"].startswith("quiet_hours")
    assert night["until"] and "Reply STOP" in night["body"]
    text = winback("preview", "+14158675302", "--now", NIGHT)
    assert text.exit_code == 0, text.output
    assert f"enrollment {night['enrollment_id']}: next sms to Ana Doe" in text.stdout
    assert f"held now: {night['rule']} until" in text.stdout
    assert "  | Ana, mortgage rates are now lower" in text.stdout
    by_id = winback.json("preview", str(night["enrollment_id"]), "--now", NOW)["previews"]
    assert by_id[0]["decision"] == "send"
    (no_texts,) = winback.json("preview", "person3@gmail.com", "--now", NOW)["previews"]
    assert (no_texts["decision"], no_texts["rule"]) == ("suppress", "no_sms_consent")
    missing = winback("preview", "nobody@example.com", "--now", NOW)
    assert missing.exit_code == 2 and "nobody in the book" in missing.stderr


def test_require_for_makes_every_named_trigger_wait_for_a_manager(
    winback: Winback, tmp_path: Path
) -> None:
    config = tmp_path / "winback.toml"
    config.write_text('[approval]\nrequire_for = ["rate_drop", "loan_age"]\n')
    env = {"WINBACK_CONFIG": str(config)}
    book(winback, tmp_path)
    created = winback.json("evaluate", "--now", NOW, env=env)["batches"]
    assert {b["trigger"]: b["status"] for b in created} == {
        "rate_drop": "pending_approval",
        "loan_age": "pending_approval",
    }
    config.write_text('[approval]\nrequire_for = ["rate_dorp"]\n')
    refused = winback("evaluate", "--now", NOW, env=env)
    assert refused.exit_code == 2 and "approval.require_for" in refused.stderr


def test_the_first_evaluation_says_what_it_scheduled_and_what_waits(
    winback: Winback, tmp_path: Path
) -> None:
    book(winback, tmp_path)
    result = winback("evaluate", "--now", NOW)
    assert result.exit_code == 0, result.output
    batches = {b["trigger"]: b for b in winback.json("batches")["batches"]}
    last = result.stdout.strip().splitlines()[-1]
    assert last == (
        "scheduled 1 person on 1 track (4 touches); 1 batch of 3 waits for approval: "
        f"`winback batch show {batches['rate_drop']['id']}`"
    )
