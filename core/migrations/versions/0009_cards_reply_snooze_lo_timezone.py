"""cards (what is posted to Slack, exactly once), replies.snoozed_until, loan_officers.timezone

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.db import UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "cards",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("key", sa.String(80), nullable=False, unique=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("reply_id", _ID, sa.ForeignKey("replies.id"), nullable=True),
        sa.Column("message_id", _ID, sa.ForeignKey("messages.id"), nullable=True),
        sa.Column("batch_id", sa.Integer(), sa.ForeignKey("batches.id"), nullable=True),
        sa.Column("lo_id", sa.Integer(), sa.ForeignKey("loan_officers.id"), nullable=True),
        sa.Column("thread_of", _ID, sa.ForeignKey("cards.id"), nullable=True),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("due_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("lease_owner", sa.String(80), nullable=True),
        sa.Column("lease_until", UTCDateTime(timezone=True), nullable=True),
        sa.Column("maybe_posted", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("last_error", sa.String(200), nullable=True),
        sa.Column("channel", sa.String(40), nullable=True),
        sa.Column("ts", sa.String(40), nullable=True),
        sa.Column("posted_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("needs_update", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_cards_status_due_at", "cards", ["status", "due_at"])
    op.create_index("ix_cards_reply_id", "cards", ["reply_id"])
    op.add_column("replies", sa.Column("snoozed_until", UTCDateTime(timezone=True), nullable=True))
    op.add_column("loan_officers", sa.Column("timezone", sa.String(40), nullable=True))


def downgrade() -> None:
    op.drop_column("loan_officers", "timezone")
    op.drop_column("replies", "snoozed_until")
    op.drop_index("ix_cards_reply_id", table_name="cards")
    op.drop_index("ix_cards_status_due_at", table_name="cards")
    op.drop_table("cards")
