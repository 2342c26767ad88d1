"""The admin's prediction history: every analysis, filtered, sorted, paginated, summarised, exported.

Built for tens of thousands of rows: filters and sort keys map to indexed columns, the page is fetched
with LIMIT/OFFSET on an indexed order with the id as tie-breaker, and the median is computed in SQL on
PostgreSQL (percentile_cont) or over the single filtered processing_s column elsewhere.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select

from breastapp.extensions import db
from breastapp.orm import Analysis, Image, User

SORTS = {
    "created_at": Analysis.created_at,
    "status": Analysis.status,
    "verdict": Analysis.verdict,
    "probability": Analysis.image_malignancy_prob,
    "processing_s": Analysis.processing_s,
    "modality": Image.modality,
    "user": User.username,
}
DEFAULT_SORT = "-created_at"
MAX_PER_PAGE = 500


@dataclass(frozen=True)
class HistoryFilters:
    date_from: date | None = None  # inclusive, UTC day
    date_to: date | None = None  # inclusive, UTC day
    user_id: str | None = None
    modality: str | None = None
    verdict: str | None = None
    status: str | None = None


@dataclass(frozen=True)
class HistoryRow:
    id: str
    created_at: datetime
    status: str
    verdict: str | None
    image_malignancy_prob: float | None
    processing_s: float | None
    attempts: int
    error_code: str | None
    modality: str
    view: str | None
    laterality: str | None
    study_id: str
    username: str


@dataclass(frozen=True)
class HistoryPage:
    rows: list[HistoryRow]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


@dataclass(frozen=True)
class HistorySummary:
    total: int
    verdict_counts: dict[str, int]
    status_counts: dict[str, int]
    median_processing_s: float | None


def _base_select(columns):
    return (
        select(*columns)
        .select_from(Analysis)
        .join(Image, Analysis.image_id == Image.id)
        .join(User, Analysis.user_id == User.id)
    )


def _aggregate_select(columns, filters: HistoryFilters):
    """For counts and the median: join images only when the modality filter needs it (big-table speed)."""
    query = select(*columns).select_from(Analysis)
    if filters.modality:
        query = query.join(Image, Analysis.image_id == Image.id)
    return query


def _apply_filters(query, filters: HistoryFilters):
    if filters.date_from:
        query = query.where(Analysis.created_at >= _day_start(filters.date_from))
    if filters.date_to:
        query = query.where(Analysis.created_at < _day_start(filters.date_to) + timedelta(days=1))
    if filters.user_id:
        query = query.where(Analysis.user_id == filters.user_id)
    if filters.modality:
        query = query.where(Image.modality == filters.modality)
    if filters.verdict:
        query = query.where(Analysis.verdict == filters.verdict)
    if filters.status:
        query = query.where(Analysis.status == filters.status)
    return query


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _order(sort: str):
    """`sort` is a key of SORTS, '-' prefixed for descending; unknown keys fall back to newest first."""
    descending = sort.startswith("-")
    column = SORTS.get(sort.lstrip("-"))
    if column is None:
        return _order(DEFAULT_SORT)
    primary = column.desc() if descending else column.asc()
    tie_breaker = Analysis.id.desc() if descending else Analysis.id.asc()
    return (
        (primary.nulls_last(), tie_breaker) if column is not Analysis.created_at else (primary, tie_breaker)
    )


ROW_COLUMNS = (
    Analysis.id,
    Analysis.created_at,
    Analysis.status,
    Analysis.verdict,
    Analysis.image_malignancy_prob,
    Analysis.processing_s,
    Analysis.attempts,
    Analysis.error_code,
    Image.modality,
    Image.view,
    Image.laterality,
    Image.study_id,
    User.username,
)


def query(
    filters: HistoryFilters, sort: str = DEFAULT_SORT, page: int = 1, per_page: int = 50
) -> HistoryPage:
    """One page of the filtered history and the filtered total."""
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    page = max(1, page)
    rows_query = _apply_filters(_base_select(ROW_COLUMNS), filters).order_by(*_order(sort))
    rows = db.session.execute(rows_query.limit(per_page).offset((page - 1) * per_page)).all()
    total = db.session.scalar(_apply_filters(_aggregate_select([func.count()], filters), filters))
    return HistoryPage([HistoryRow(*row) for row in rows], total or 0, page, per_page)


def summary(filters: HistoryFilters) -> HistorySummary:
    """Counts per verdict and per status, and the median processing time, over the filtered range."""
    verdicts = _counts(Analysis.verdict, filters)
    statuses = _counts(Analysis.status, filters)
    return HistorySummary(sum(statuses.values()), verdicts, statuses, _median_processing(filters))


def _counts(column, filters: HistoryFilters) -> dict[str, int]:
    query = _apply_filters(_aggregate_select([column, func.count()], filters), filters).group_by(column)
    return {key or "none": count for key, count in db.session.execute(query).all()}


def _median_processing(filters: HistoryFilters) -> float | None:
    done = Analysis.processing_s.is_not(None)
    if db.session.get_bind().dialect.name == "postgresql":
        median = func.percentile_cont(0.5).within_group(Analysis.processing_s)
        value = db.session.scalar(_apply_filters(_aggregate_select([median], filters), filters).where(done))
        return None if value is None else float(value)
    column_query = _aggregate_select([Analysis.processing_s], filters)
    values = db.session.scalars(_apply_filters(column_query, filters).where(done)).all()
    return float(statistics.median(values)) if values else None


CSV_HEADER = (
    "analysis_id",
    "created_at",
    "status",
    "verdict",
    "image_malignancy_prob",
    "processing_s",
    "attempts",
    "error_code",
    "modality",
    "view",
    "laterality",
    "study_id",
    "user",
)


def export_csv(filters: HistoryFilters, sort: str = DEFAULT_SORT, batch: int = 1000) -> Iterator[str]:
    """The filtered history as CSV text chunks, streamed in batches (never the whole table in memory)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    rows_query = _apply_filters(_base_select(ROW_COLUMNS), filters).order_by(*_order(sort))
    result = db.session.execute(rows_query.execution_options(yield_per=batch))
    for count, row in enumerate(result, start=1):
        writer.writerow(_csv_values(row))
        if count % batch == 0:
            yield _drain(buffer)
    yield _drain(buffer)


def _csv_values(row) -> list:
    values = list(row)
    values[1] = values[1].isoformat()
    return ["" if value is None else value for value in values]


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def user_choices() -> list[tuple[str, str]]:
    """(id, username) of every user, for the history filter."""
    return [
        (row.id, row.username)
        for row in db.session.execute(select(User.id, User.username).order_by(User.username))
    ]
