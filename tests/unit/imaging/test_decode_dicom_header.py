"""What a DICOM header contributes to the Frame: modality policy, geometry, view, and safe metadata."""

from __future__ import annotations

import json

import pytest
from pydicom import uid
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from breastapp.imaging import errors
from breastapp.imaging.decode import decode
from tests.unit.imaging import dicom_factory as factory


def decoded(ds, **kwargs):
    return decode(factory.to_bytes(ds), **kwargs)


def secondary_capture(**tags):
    """A digitised film as the NEMA samples store it: Secondary Capture, Modality RG."""
    return factory.make_dataset(
        factory.synthetic_pixels(), bits_stored=12, sop_class=uid.SecondaryCaptureImageStorage, **tags
    )


def test_no_patient_identifier_reaches_the_metadata():
    ds = factory.mammogram(**factory.IDENTIFYING_TAGS)
    frame = decoded(ds)
    text = json.dumps(frame.metadata)  # also proves the metadata is JSON-serialisable
    for keyword, value in factory.IDENTIFYING_TAGS.items():
        assert keyword not in frame.metadata
        assert value.split("^")[0] not in text


def test_acquisition_facts_are_kept():
    frame = decoded(factory.mammogram(KVP=29, Manufacturer="ACME Imaging"))
    assert frame.metadata["KVP"] == 29
    assert frame.manufacturer == "ACME Imaging"
    assert frame.presentation_intent == "FOR PRESENTATION"
    assert frame.metadata["transfer_syntax"] == uid.ExplicitVRLittleEndian.name


def test_imager_pixel_spacing_wins_over_pixel_spacing_and_the_caller():
    ds = factory.mammogram(ImagerPixelSpacing=[0.07, 0.08], PixelSpacing=[0.1, 0.1])
    frame = decoded(ds, spacing_mm=0.2)
    assert frame.spacing_mm == (0.07, 0.08)
    assert frame.metadata["spacing_source"] == "ImagerPixelSpacing"


def test_pixel_spacing_is_used_when_imager_pixel_spacing_is_absent():
    ds = factory.mammogram(PixelSpacing=[0.1, 0.1])
    del ds.ImagerPixelSpacing
    assert decoded(ds).spacing_mm == (0.1, 0.1)


def test_callers_spacing_fills_a_gap_and_otherwise_spacing_is_unknown():
    ds = factory.mammogram()
    del ds.ImagerPixelSpacing
    assert decoded(ds).spacing_mm is None
    frame = decoded(ds, spacing_mm=0.2)
    assert frame.spacing_mm == (0.2, 0.2) and frame.metadata["spacing_source"] == "caller"


def test_image_laterality_then_series_laterality_then_the_caller():
    ds = factory.mammogram(ImageLaterality="L", Laterality="R")
    assert decoded(ds, laterality="R").laterality == "L"
    del ds.ImageLaterality
    assert decoded(ds).laterality == "R"
    del ds.Laterality
    assert decoded(ds, laterality="L").laterality == "L"
    assert decoded(ds).laterality is None


def test_view_from_view_position_then_view_code_sequence_then_the_caller():
    ds = factory.mammogram(ViewPosition="MLO")
    assert decoded(ds, view="CC").view == "MLO"
    del ds.ViewPosition
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = (
        "399368009",
        "SCT",
        "medio-lateral oblique",
    )
    ds.ViewCodeSequence = Sequence([code])
    assert decoded(ds).view == "MLO"
    del ds.ViewCodeSequence
    assert decoded(ds, view="CC").view == "CC"


def test_ultrasound_dicom_is_accepted_as_us():
    ds = factory.make_dataset(
        factory.synthetic_pixels(bits_stored=8), modality="US", sop_class=uid.UltrasoundImageStorage
    )
    frame = decoded(ds, modality="MG")  # the file's own modality wins
    assert frame.modality == "US"


def test_digitised_film_rg_with_body_part_breast_is_a_mammogram():
    frame = decoded(secondary_capture(Modality="RG", BodyPartExamined="BREAST"))
    assert frame.modality == "MG"
    assert frame.metadata["Modality"] == "RG"
    assert "BREAST" in frame.metadata["modality_reason"]


@pytest.mark.parametrize("stored", ["RG", "CR", "DX"])
def test_xray_without_breast_evidence_needs_the_caller_to_say_mg(stored):
    ds = secondary_capture(Modality=stored)
    error = pytest.raises(errors.UnsupportedModality, decoded, ds).value
    assert stored in error.message
    assert decoded(ds, modality="MG").modality == "MG"


def test_mammography_sop_class_is_mg_whatever_the_modality_tag_says():
    assert decoded(factory.mammogram(Modality="OT")).modality == "MG"


@pytest.mark.parametrize("stored", ["CT", "MR", "PT", "NM"])
def test_other_modalities_are_refused_by_name(stored):
    ds = secondary_capture(Modality=stored)
    error = pytest.raises(errors.UnsupportedModality, decoded, ds, modality="MG").value
    assert f"{stored} image" in error.message


def test_missing_modality_uses_the_callers_choice_or_is_refused():
    ds = secondary_capture()
    del ds.Modality
    with pytest.raises(errors.UnsupportedModality):
        decoded(ds)
    assert decoded(ds, modality="US").modality == "US"
