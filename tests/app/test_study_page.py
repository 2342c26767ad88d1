"""The study page groups images and scores each breast holding both CC and MLO views."""

from __future__ import annotations

import pytest

from breastapp.extensions import db
from breastapp.orm import Analysis, Image, Lesion, Study
from breastapp.services.studies import breast_summaries


def add_view(study, laterality, view, prob, lesions=0, modality="MG", weights=()):
    image = Image(
        study_id=study.id,
        stored_name="x.png",
        sha256="0" * 64,
        size_bytes=1,
        format="PNG",
        modality=modality,
        view=view,
        laterality=laterality,
        rows=8,
        cols=8,
    )
    db.session.add(image)
    db.session.flush()
    analysis = Analysis(
        image_id=image.id,
        user_id=study.owner_id,
        status="done",
        verdict="benign",
        image_malignancy_prob=prob,
        thresholds={"malignancy": 0.5},
        weights=list(weights),
    )
    analysis.lesions = [
        Lesion(
            index=i + 1,
            row0=0,
            col0=0,
            row1=2,
            col1=2,
            centroid_row=1,
            centroid_col=1,
            area_px=4,
            seg_prob_max=0.9,
            seg_prob_mean=0.7,
            malignancy_prob=prob,
            label="benign",
        )
        for i in range(lesions)
    ]
    db.session.add(analysis)


@pytest.fixture
def study(app, radiologist):
    study = Study(owner_id=radiologist.id)
    db.session.add(study)
    db.session.flush()
    add_view(study, "L", "CC", 0.8, lesions=1)
    add_view(study, "L", "MLO", 0.4, lesions=1)
    add_view(study, "R", "CC", 0.2)
    add_view(study, "R", "MLO", 0.1)
    add_view(study, None, None, 0.9, modality="US")  # ultrasound: not part of a breast pair
    db.session.commit()
    return study


def test_per_breast_score_is_the_mean_of_cc_and_mlo(study):
    db.session.expire_all()
    left, right = breast_summaries(db.session.get(Study, study.id))
    assert (left.laterality, left.score, left.verdict) == ("L", pytest.approx(0.6), "malignant")
    assert (right.laterality, right.score, right.verdict) == (
        "R",
        pytest.approx(0.15),
        "no_suspicious_lesion",
    )


def test_a_breast_with_one_view_has_no_score(app, radiologist):
    study = Study(owner_id=radiologist.id)
    db.session.add(study)
    db.session.flush()
    add_view(study, "L", "CC", 0.9)
    db.session.commit()
    assert breast_summaries(study) == []


def test_study_page_shows_images_and_breast_scores(study, rad_client):
    page = rad_client.get(f"/studies/{study.id}").get_data(as_text=True)
    assert "Per breast" in page and "60.0 %" in page and "15.0 %" in page
    assert page.count('class="tile"') == 5


def test_study_page_repeats_each_distinct_caution_of_the_weights_behind_its_verdicts(
    app, radiologist, rad_client
):
    caution = "mg_cls did not separate benign from malignant better than chance when it was validated"
    flagged = [
        {"name": "mg_cls", "role": "classification", "validation": "mini-MIAS ...", "caution": caution}
    ]
    plain = [{"name": "us_cls", "role": "classification", "validation": "BUSI ...", "caution": ""}]
    old_row = [{"name": "mg_cls", "role": "classification"}]  # written before results carried cautions
    study = Study(owner_id=radiologist.id)
    db.session.add(study)
    db.session.flush()
    add_view(study, "L", "CC", 0.8, weights=flagged)
    add_view(study, "L", "MLO", 0.4, weights=flagged)
    add_view(study, "R", "CC", 0.2, weights=old_row)
    add_view(study, None, None, 0.9, modality="US", weights=plain)
    db.session.commit()
    page = rad_client.get(f"/studies/{study.id}").get_data(as_text=True)
    assert page.count('class="alert-caution"') == 1 and f"{caution}." in page


def test_study_page_without_cautioned_weights_shows_no_caution(study, rad_client):
    assert "alert-caution" not in rad_client.get(f"/studies/{study.id}").get_data(as_text=True)
