"""loans: partial index on the ARM first adjustment date

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ONLY_ARMS = sa.text("arm_first_adjustment_date IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("loans", schema=None) as batch_op:
        batch_op.create_index(
            "ix_loans_arm_first_adjustment_date",
            ["arm_first_adjustment_date"],
            unique=False,
            sqlite_where=_ONLY_ARMS,
            postgresql_where=_ONLY_ARMS,
        )


def downgrade() -> None:
    with op.batch_alter_table("loans", schema=None) as batch_op:
        batch_op.drop_index("ix_loans_arm_first_adjustment_date")
