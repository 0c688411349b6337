"""GET /s/{token}: the borrower's savings page, over real HTTP, with core's exact figures."""

from __future__ import annotations

from sqlalchemy import select

from core.batches.models import BatchMember
from core.inbound.models import Engagement
from core.loanmath import snapshot_quote
from core.outreach.context import Links, money, percent
from core.tokens import UNSUBSCRIBE, sign
from tests.outreach import approved_book
from tests.web import SECRET_KEY, LiveWeb


def _member(web: LiveWeb) -> BatchMember:
    approved_book(web.sessions, [{"first_name": "Dana"}])
    with web.sessions() as session:
        return session.scalars(select(BatchMember)).one()


def test_the_page_shows_the_borrowers_exact_figures_with_the_apr(web: LiveWeb) -> None:
    member = _member(web)
    link = Links(web.public_base_url, SECRET_KEY).savings(member.id, web.clock.now())
    response = web.http.get(link.removeprefix(web.public_base_url))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    quote = snapshot_quote(member.snapshot)
    assert quote is not None
    for figure in (quote.current_payment, quote.new_payment, quote.monthly_savings):
        assert money(figure) in page
    assert percent(member.snapshot["offer_rate"]) in page and "APR" in page
    assert "not a commitment to lend" in page
    assert "Payments do not include taxes and insurance" in page
    assert "Hi Dana" in page and "NMLS ID" in page
    with web.sessions() as session:
        visits = session.scalars(select(Engagement).where(Engagement.kind == "visit")).all()
    assert [v.batch_member_id for v in visits] == [member.id]


def test_tampered_foreign_and_expired_links_get_a_friendly_page(web: LiveWeb) -> None:
    member = _member(web)
    link = Links(web.public_base_url, SECRET_KEY).savings(member.id, web.clock.now())
    path = link.removeprefix(web.public_base_url)
    tampered = web.http.get(path[:-2] + ("aa" if not path.endswith("aa") else "bb"))
    assert tampered.status_code == 400 and "does not work" in tampered.text
    assert "location" not in tampered.headers
    foreign = sign(
        secret=SECRET_KEY, purpose=UNSUBSCRIBE, subject=member.id, issued_at=web.clock.now()
    )
    assert web.http.get(f"/s/{foreign}").status_code == 400
    web.clock.advance(days=200)
    assert web.http.get(path).status_code == 410
