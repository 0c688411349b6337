"""Shared bits of the borrower pages: rendering with the company footer, the friendly 'this
link does not work' page."""

from __future__ import annotations

from typing import Any

from starlette.responses import HTMLResponse

from core.outreach.context import company_from_settings
from handlers.web.deps import WebDeps

# Borrower pages are personal: never cached by a proxy, never indexed.
NO_STORE = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}


def page(deps: WebDeps, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page from templates/web/, with the brokerage's details for the footer."""
    context.setdefault("company", company_from_settings(deps.settings).as_context())
    html = deps.pages.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status, headers=NO_STORE)


def link_problem(deps: WebDeps, *, expired: bool = False) -> HTMLResponse:
    """400 (tampered, unknown) or 410 (expired): a friendly page, never a redirect."""
    if expired:
        return page(
            deps, "link_problem.html.j2", 410, heading="This link has expired",
            explanation="Links in our emails stop working after a few months.",
        )  # fmt: skip
    return page(
        deps, "link_problem.html.j2", 400, heading="This link does not work",
        explanation="It may have been cut short or changed when it was copied. "
        "Nothing was changed.",
    )  # fmt: skip
