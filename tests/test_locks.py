"""The singleton jobs' advisory locks on a real PostgreSQL server: one worker per install at a
time, and installs (schemas) sharing the server never block each other."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from core.db import make_engine, make_sessionmaker
from core.locks import job_lock_key, lock_key, only_one_worker

POSTGRES_ONLY = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@pytest.fixture
def install(database_url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions of one install: its own schema on the shared server."""
    factory = make_sessionmaker(make_engine(database_url))
    yield factory
    factory.kw["bind"].dispose()


@pytest.fixture
def other_install(other_install_url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions of a second install on the same server, in another schema."""
    factory = make_sessionmaker(make_engine(other_install_url))
    yield factory
    factory.kw["bind"].dispose()


@POSTGRES_ONLY
def test_workers_of_two_installs_on_one_server_both_get_the_lock_at_once(
    install: sessionmaker[Session], other_install: sessionmaker[Session]
) -> None:
    with install() as ours, ours.begin(), other_install() as theirs, theirs.begin():
        assert only_one_worker(ours, "evaluate") is True
        assert only_one_worker(theirs, "evaluate") is True


@POSTGRES_ONLY
def test_two_workers_of_one_install_exclude_each_other_until_the_first_commits(
    install: sessionmaker[Session],
) -> None:
    with install() as first, install() as second:
        with first.begin():
            assert only_one_worker(first, "evaluate") is True
            with second.begin():
                assert only_one_worker(second, "evaluate") is False
                assert only_one_worker(second, "fetch_rates") is True  # another job is free
        with second.begin():  # the first worker's transaction ended: the lock went with it
            assert only_one_worker(second, "evaluate") is True


@POSTGRES_ONLY
def test_the_key_is_the_same_on_every_connection_and_differs_per_schema_and_job(
    database_url: str, install: sessionmaker[Session], other_install: sessionmaker[Session]
) -> None:
    # A second engine: a worker process of its own, not just another pooled connection.
    other_process = make_sessionmaker(make_engine(database_url))
    try:
        with install() as one, other_process() as another, other_install() as theirs:
            key = job_lock_key(one, "evaluate")
            database, schema = one.execute(
                text("SELECT current_database(), current_schema()")
            ).one()

            assert job_lock_key(another, "evaluate") == key
            assert lock_key(database=database, schema=schema, job="evaluate") == key
            assert job_lock_key(theirs, "evaluate") != key
            assert job_lock_key(one, "fetch_rates") != key
    finally:
        other_process.kw["bind"].dispose()


def test_the_key_does_not_change_between_processes_or_releases() -> None:
    # Workers of one install run in several processes (and, during a deploy, two releases):
    # a key from Python's salted hash() or a changed formula would let two of them run a job.
    assert lock_key(database="test", schema="public", job="evaluate") == -4925301770653053206
    assert -(2**63) <= lock_key(database="d", schema="s", job="j") < 2**63  # a PostgreSQL bigint
