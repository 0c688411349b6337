"""Phone numbers and emails never reach the logs in clear text (SPEC §8)."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.privacy import MaskContactDetails, mask_contact_details, mask_email, mask_phone


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("+14155550123", "+1415***0123"),
        ("+447911123456", "+4479***3456"),
        ("+3312345678", "+331***5678"),
        ("+1234567", "+12***67"),
        ("not a phone", "***"),
    ],
)
def test_mask_phone(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked


@pytest.mark.parametrize(
    ("email", "masked"),
    [
        ("jane.doe@gmail.com", "j***@g***.com"),
        ("Jane Doe <jane.doe@gmail.com>", "j***@g***.com"),
        ("bob@mail.example.co.uk", "b***@m***.uk"),
        ("nobody", "***"),
    ],
)
def test_mask_email(email: str, masked: str) -> None:
    assert mask_email(email) == masked


def test_free_text_is_masked_everywhere_it_mentions_a_contact() -> None:
    text = (
        "reply from +14155550123 (jane.doe@gmail.com), form From=%2B14155550123&"
        "Email=jane%40gmail.com; loan 30000000 at 6.875% on 2024-03-01"
    )

    masked = mask_contact_details(text)

    assert "4155550123" not in masked
    assert "jane" not in masked
    assert "+1415***0123" in masked and "%2B1415***0123" in masked
    assert "j***@g***.com" in masked and "j***%40g***.com" in masked
    assert "loan 30000000 at 6.875% on 2024-03-01" in masked  # other numbers are untouched


def _logger_with_filter() -> tuple[logging.Logger, list[str]]:
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect()
    handler.addFilter(MaskContactDetails())
    logger = logging.getLogger("tests.privacy.collect")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, lines


def test_filter_masks_arguments_and_tracebacks() -> None:
    logger, lines = _logger_with_filter()

    logger.info("sending to %s and %s", "+14155550123", "jane.doe@gmail.com")
    try:
        raise ValueError("bad number +14155550123")
    except ValueError:
        logger.exception("failed for %s", "jane.doe@gmail.com")

    output = "\n".join(lines)
    assert "+14155550123" not in output
    assert "jane.doe@gmail.com" not in output
    assert "sending to +1415***0123 and j***@g***.com" in output
    assert "ValueError: bad number +1415***0123" in output


@given(
    digits=st.text(alphabet="0123456789", min_size=7, max_size=15).filter(
        lambda d: not d.startswith("0")
    ),
    before=st.text(alphabet=" :=,(<'\"", max_size=2),
    after=st.text(alphabet=" ,.)>'\";", max_size=2),
)
def test_no_e164_number_survives_masking(digits: str, before: str, after: str) -> None:
    phone = "+" + digits
    masked = mask_contact_details(f"{before}{phone}{after}")

    assert phone not in masked
    assert digits not in masked
