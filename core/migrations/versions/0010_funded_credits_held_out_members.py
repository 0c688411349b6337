"""funded_credits (funded attribution, one row per credited loan), held_out_members (holdout)

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.db import UTCDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "funded_credits",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("loan_id", _ID, sa.ForeignKey("loans.id"), nullable=True, unique=True),
        sa.Column("contact_id", _ID, sa.ForeignKey("contacts.id"), nullable=False),
        sa.Column("enrollment_id", _ID, sa.ForeignKey("enrollments.id"), nullable=False),
        sa.Column("reply_id", _ID, sa.ForeignKey("replies.id"), nullable=True),
        sa.Column("funded_date", sa.Date(), nullable=False),
        sa.Column("credited_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("how", sa.String(60), nullable=False),
        sa.Column("why", sa.String(300), nullable=False),
    )
    op.create_index("ix_funded_credits_contact_id", "funded_credits", ["contact_id"])
    op.create_index("ix_funded_credits_enrollment_id", "funded_credits", ["enrollment_id"])
    op.create_index("ix_funded_credits_funded_date", "funded_credits", ["funded_date"])
    # One "Mark funded" waiting for its loan per enrollment.
    op.create_index(
        "uq_funded_credits_marked_enrollment",
        "funded_credits",
        ["enrollment_id"],
        unique=True,
        sqlite_where=sa.text("loan_id IS NULL"),
        postgresql_where=sa.text("loan_id IS NULL"),
    )
    op.create_table(
        "held_out_members",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("batch_id", sa.Integer(), sa.ForeignKey("batches.id"), nullable=False),
        sa.Column(
            "batch_member_id", _ID, sa.ForeignKey("batch_members.id"), nullable=False, unique=True
        ),
        sa.Column("contact_id", _ID, sa.ForeignKey("contacts.id"), nullable=False),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("fraction", sa.Float(), nullable=False),
        sa.Column("held_at", UTCDateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_held_out_members_batch_id", "held_out_members", ["batch_id"])
    op.create_index("ix_held_out_members_contact_id", "held_out_members", ["contact_id"])


def downgrade() -> None:
    op.drop_index("ix_held_out_members_contact_id", table_name="held_out_members")
    op.drop_index("ix_held_out_members_batch_id", table_name="held_out_members")
    op.drop_table("held_out_members")
    op.drop_index("uq_funded_credits_marked_enrollment", table_name="funded_credits")
    op.drop_index("ix_funded_credits_funded_date", table_name="funded_credits")
    op.drop_index("ix_funded_credits_enrollment_id", table_name="funded_credits")
    op.drop_index("ix_funded_credits_contact_id", table_name="funded_credits")
    op.drop_table("funded_credits")
