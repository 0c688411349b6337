"""Template versions: each distinct rendered template stored once, kept 24 months (SPEC §8)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.bulk import insert_for
from core.outreach.models import TemplateVersion
from core.tracks.render import BASE_VARIANT, Rendered


def _template_name(rendered: Rendered) -> str:
    """The template's name as its files are named: 'intro', or 'intro.b' for variant b."""
    if rendered.variant in (None, BASE_VARIANT):
        return rendered.template
    return f"{rendered.template}.{rendered.variant}"


class TemplateVersions:
    """The id of each rendered template's version, inserted at first use and then cached."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}

    def clear(self) -> None:
        """Forget the cache (a rollback may have undone a version inserted in it)."""
        self._ids.clear()

    def id_for(self, session: Session, rendered: Rendered, now: datetime) -> int:
        """The version's id, inserting it if no worker has yet."""
        if rendered.version_hash not in self._ids:
            insert = insert_for(session)
            session.execute(
                insert(TemplateVersion)
                .values(
                    hash=rendered.version_hash,
                    track=rendered.track,
                    template=_template_name(rendered),
                    channel=rendered.channel,
                    source=rendered.source,
                    created_at=now,
                )
                .on_conflict_do_nothing(index_elements=["hash"])
            )
            self._ids[rendered.version_hash] = session.scalars(
                select(TemplateVersion.id).where(TemplateVersion.hash == rendered.version_hash)
            ).one()
        return self._ids[rendered.version_hash]
