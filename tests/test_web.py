"""The web process answers its health check from the real database."""

from __future__ import annotations

from starlette.testclient import TestClient

from bot.runtime import Runtime
from bot.web import create_web_app
from core.clock import SystemClock
from core.settings import load_settings


def test_healthz_is_200_when_the_database_answers(database_url: str) -> None:
    runtime = Runtime(settings=load_settings(DATABASE_URL=database_url), clock=SystemClock())
    with TestClient(create_web_app(runtime)) as client:
        response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_healthz_is_503_when_the_database_is_down() -> None:
    settings = load_settings(DATABASE_URL="postgresql://nobody@127.0.0.1:1/none")
    runtime = Runtime(settings=settings, clock=SystemClock())
    with TestClient(create_web_app(runtime)) as client:
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert client.post("/healthz").status_code == 405
