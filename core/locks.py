"""Advisory locks that let one worker at a time run a singleton job (PostgreSQL).

PostgreSQL advisory locks are server-wide, so a constant key would make two Winback installs
(or two schemas) on one server skip each other's jobs. Each key is therefore a hash of the
database, the schema and the job name: workers of the same install share it, others never do.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import text
from sqlalchemy.orm import Session

# Part of every hashed name, so Winback's keys cannot match another application's hashing.
_NAMESPACE = "winback.job"


def lock_key(*, database: str, schema: str, job: str) -> int:
    """The advisory-lock key (a signed 64-bit integer) of `job` in this database and schema."""
    # NUL cannot occur in PostgreSQL names, so distinct (database, schema, job) never join alike.
    name = "\x00".join((_NAMESPACE, database, schema, job)).encode()
    digest = hashlib.blake2b(name, digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)  # pg_advisory locks take a bigint


def job_lock_key(session: Session, job: str) -> int:
    """The advisory-lock key of `job` for the database and schema this session works in."""
    database, schema = session.execute(
        text("SELECT current_database(), coalesce(current_schema(), '')")
    ).one()
    return lock_key(database=database, schema=schema, job=job)


def only_one_worker(session: Session, job: str) -> bool:
    """Take `job`'s lock for this transaction; False when another worker of this install has it."""
    if session.get_bind().dialect.name != "postgresql":
        return True  # SQLite: a single worker is the documented limit
    key = job_lock_key(session, job)
    return bool(session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": key}))
