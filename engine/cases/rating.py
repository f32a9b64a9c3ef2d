"""Rating a closed case (好差评): only its applicant, once, with a level 1-5.

Rules:

* The level is an ``int`` from 1 to 5 (:data:`RATINGS`): ``True``, ``1.0`` and ``"5"`` are not levels.
* A bad rating (1 or 2) needs a reason, so that it can be followed up (整改回访).
* Only the applicant rates: the rater says who they are (their holder id); anybody else gets the answer
  a case that does not exist gets.
* A case is rated once, after it closed. Two ratings at the same instant store one rating and one audit
  row; the other is a :class:`~engine.errors.Conflict`. The write is a conditional ``UPDATE ... WHERE
  rating IS NULL`` whose row count decides (on PostgreSQL the second writer waits on the row lock and then
  finds the rating set).
* A withdrawn case (撤回) is closed and rated too (the service up to the withdrawal; a bad rating has its
  reason for the follow-up), but its rating counts in no figure, as the case counts in neither 办结 nor
  the on-time rate (:func:`engine.cases.figure_counts.rating_counts`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine, select, update

from engine.cases.access import case_not_found, same_holder
from engine.cases.figure_counts import count_rating
from engine.cases.status import CLOSED
from engine.errors import Conflict, InvalidInput
from engine.limits import check_plain_text
from engine.persistence.database import unit_of_work
from engine.persistence.repositories import AuditRepository, audit_row
from engine.persistence.tables import cases

__all__ = ["MAX_COMMENT", "RATINGS", "CaseRatings", "check_rating"]

RATINGS: dict[int, str] = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}
MAX_COMMENT = 500
"""Characters of a rating's comment (the reason of a bad rating)."""


def check_rating(level: object, comment: object) -> tuple[int, str]:
    """The level and the comment (stripped) when they make a rating; else ``InvalidInput``."""
    if isinstance(level, bool) or not isinstance(level, int) or level not in RATINGS:
        raise InvalidInput("评价等级须为 1-5 的整数", code="bad_rating", field="level", value=repr(level))
    if not isinstance(comment, str):
        raise InvalidInput("评价说明必须是文字", code="bad_rating_comment", field="comment")
    text = comment.strip()
    if len(text) > MAX_COMMENT:
        raise InvalidInput(
            f"评价说明不能超过 {MAX_COMMENT} 个字符", code="too_long", field="comment", limit=MAX_COMMENT
        )
    if level <= 2 and not text:
        raise InvalidInput("差评须说明原因以便整改回访", code="reason_required", field="comment")
    check_plain_text(text, "comment", "评价说明", multiline=True)
    return level, text


class CaseRatings:
    """The rating command of cases; one transaction per rating."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.clock = clock

    def rate(self, case_id: str, level: int, comment: str, *, rater: str) -> None:
        """``rater`` is the holder id of whoever rates; only the case's applicant may."""
        level, text = check_rating(level, comment)
        with unit_of_work(self.engine) as conn:
            row = conn.execute(
                select(
                    cases.c.applicant_id,
                    cases.c.status,
                    cases.c.rating,
                    cases.c.submitted_at,
                    cases.c.department,
                ).where(cases.c.id == case_id)
            ).first()
            if row is None or not same_holder(rater, row.applicant_id):
                raise case_not_found(case_id)
            if row.status not in CLOSED:
                raise Conflict("办件办结后才能评价", code="case_not_closed", case=case_id)
            if row.rating is not None:
                raise Conflict("该办件已评价", code="already_rated", case=case_id)
            now = self.clock()
            written = conn.execute(
                update(cases)
                .where(cases.c.id == case_id, cases.c.rating.is_(None), cases.c.status.in_(sorted(CLOSED)))
                .values(rating=level, rating_comment=text, rated_at=now)
            ).rowcount
            if written != 1:  # another rating committed since the read above
                raise Conflict("该办件已评价", code="already_rated", case=case_id)
            count_rating(
                conn,
                submitted_at=row.submitted_at,
                department=row.department,
                status=row.status,
                level=level,
                rated_at=now,
            )
            AuditRepository(conn).append(
                [
                    audit_row(
                        now,
                        row.applicant_id,
                        "rated",
                        business_key=case_id,
                        detail={"level": level, "label": RATINGS[level]},
                    )
                ]
            )
