"""inbound_events (the webhook ledger), replies, delivery_events, engagements

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.db import UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "inbound_events",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("received_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("form", sa.JSON(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.String(40), nullable=True),
        sa.Column("contact_id", _ID, sa.ForeignKey("contacts.id"), nullable=True),
        sa.Column("message_id", _ID, sa.ForeignKey("messages.id"), nullable=True),
        sa.UniqueConstraint("source", "idempotency_key"),
    )
    op.create_index("ix_inbound_events_contact_id", "inbound_events", ["contact_id"])
    op.create_table(
        "replies",
        sa.Column("id", _ID, primary_key=True),
        sa.Column(
            "inbound_event_id",
            _ID,
            sa.ForeignKey("inbound_events.id"),
            nullable=False,
            unique=True,
        ),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("contact_id", _ID, sa.ForeignKey("contacts.id"), nullable=True),
        sa.Column("message_id", _ID, sa.ForeignKey("messages.id"), nullable=True),
        sa.Column("sender", sa.String(320), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("classification", sa.String(20), nullable=False),
        sa.Column("received_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("routed_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(40), nullable=True),
        sa.Column("claimed_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(30), nullable=True),
        sa.Column("outcome_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
    )
    op.create_index("ix_replies_contact_id", "replies", ["contact_id"])
    op.create_table(
        "delivery_events",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("message_id", _ID, sa.ForeignKey("messages.id"), nullable=True),
        sa.Column("provider_id", sa.String(80), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("error_code", sa.String(40), nullable=True),
        sa.Column("received_at", UTCDateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("provider_id", "status"),
    )
    op.create_index("ix_delivery_events_message_id", "delivery_events", ["message_id"])
    op.create_table(
        "engagements",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("message_id", _ID, sa.ForeignKey("messages.id"), nullable=True),
        sa.Column("contact_id", _ID, sa.ForeignKey("contacts.id"), nullable=True),
        sa.Column("batch_member_id", _ID, sa.ForeignKey("batch_members.id"), nullable=True),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("machine", sa.Boolean(), nullable=False),
        sa.Column("machine_reason", sa.String(60), nullable=True),
        sa.Column("user_agent", sa.String(300), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
    )
    op.create_index("ix_engagements_contact_id", "engagements", ["contact_id"])
    op.create_index("ix_engagements_message_kind", "engagements", ["message_id", "kind"])


def downgrade() -> None:
    op.drop_table("engagements")
    op.drop_table("delivery_events")
    op.drop_table("replies")
    op.drop_table("inbound_events")
