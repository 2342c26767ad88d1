"""Who may see what, and the per-breast summary of a study.

A radiologist sees only the studies they uploaded; an admin sees all. Lookups return None for both
"does not exist" and "not yours", so the views answer the same 404 to both.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import fmean

from sqlalchemy import func, select

from breastapp.constants import VERDICT_BENIGN, VERDICT_MALIGNANT, VERDICT_NO_LESION
from breastapp.extensions import db
from breastapp.orm import STATUS_DONE, Analysis, Image, Study, User

DEFAULT_MALIGNANCY_THRESHOLD = 0.5
PAIRED_VIEWS = ("CC", "MLO")


def visible_studies(user: User):
    """A select of the studies this user may see, newest first."""
    query = select(Study).order_by(Study.created_at.desc(), Study.id)
    return query if user.is_admin else query.where(Study.owner_id == user.id)


def list_studies(user: User, limit: int = 200) -> list[Study]:
    return list(db.session.scalars(visible_studies(user).limit(limit)))


def get_study(user: User, study_id: str) -> Study | None:
    study = db.session.get(Study, study_id)
    return study if study is not None and _may_see(user, study) else None


def get_analysis(user: User, analysis_id: str) -> Analysis | None:
    analysis = db.session.get(Analysis, analysis_id)
    return analysis if analysis is not None and _may_see(user, analysis.image.study) else None


def _may_see(user: User, study: Study) -> bool:
    return user.is_admin or study.owner_id == user.id


def image_counts(study_ids: list[str]) -> dict[str, int]:
    """Number of images per study, in one query (for the study list)."""
    if not study_ids:
        return {}
    rows = db.session.execute(
        select(Image.study_id, func.count()).where(Image.study_id.in_(study_ids)).group_by(Image.study_id)
    )
    return dict(rows.all())


@dataclass(frozen=True)
class BreastSummary:
    """Per-breast score: the mean of the CC and MLO image malignancy probabilities (as the seed paper)."""

    laterality: str
    views: tuple[str, ...]
    score: float
    verdict: str
    threshold: float


def breast_summaries(study: Study) -> list[BreastSummary]:
    """One summary per breast holding finished mammography analyses of both CC and MLO views."""
    by_breast: dict[str, dict[str, Analysis]] = {}
    for image in study.images:
        analysis = image.latest_analysis
        if (
            image.modality != "MG"
            or image.laterality is None
            or analysis is None
            or analysis.status != STATUS_DONE
        ):
            continue
        if image.view in PAIRED_VIEWS:
            by_breast.setdefault(image.laterality, {})[image.view] = analysis
    summaries = []
    for laterality in sorted(by_breast):
        views = by_breast[laterality]
        if set(views) != set(PAIRED_VIEWS):
            continue
        summaries.append(_summarise(laterality, [views[v] for v in PAIRED_VIEWS]))
    return summaries


def study_cautions(study: Study) -> list[str]:
    """The distinct cautions of the weights behind the study's finished analyses (a classifier not shown
    to beat chance, ml/validation_summary.py), in the order they first appear: the study page's verdicts
    come from those weights, so it repeats what each result page says."""
    cautions: list[str] = []
    for image in study.images:
        analysis = image.latest_analysis
        if analysis is None or analysis.status != STATUS_DONE:
            continue
        for weights in analysis.weights:
            caution = weights.get("caution")  # rows written before 2026-12 carry none
            if caution and caution not in cautions:
                cautions.append(caution)
    return cautions


def _summarise(laterality: str, analyses: list[Analysis]) -> BreastSummary:
    score = fmean(a.image_malignancy_prob for a in analyses)
    threshold = analyses[0].thresholds.get("malignancy", DEFAULT_MALIGNANCY_THRESHOLD)
    if score >= threshold:
        verdict = VERDICT_MALIGNANT
    elif any(a.lesions for a in analyses):
        verdict = VERDICT_BENIGN
    else:
        verdict = VERDICT_NO_LESION
    return BreastSummary(laterality, PAIRED_VIEWS, round(score, 4), verdict, threshold)
