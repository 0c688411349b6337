"""market_rates: held_reason, a feed's suspicious jump kept out of the index until confirmed

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("market_rates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("held_reason", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("market_rates", schema=None) as batch_op:
        batch_op.drop_column("held_reason")
