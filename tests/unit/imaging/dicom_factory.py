"""Build small DICOM files in memory for tests: every grey-scale variant, transfer syntax and refusal.

Importable from any test folder (`from tests.unit.imaging import dicom_factory`). Nothing here touches the
shared data; all pixels are synthetic, so the expected output of a decode can be computed exactly.

How each transfer syntax is produced:
- implicit / explicit little endian, explicit big endian, deflated: pydicom's writer (`dcmwrite`),
  big endian with the pixel bytes swapped by us (pydicom writes OW bytes as given).
- RLE lossless: pydicom's native encoder via `Dataset.compress`.
- JPEG 2000 lossless and lossy: pylibjpeg-openjpeg's encoder via `Dataset.compress`.
- JPEG-LS lossless and near-lossless: pyjpegls' encoder via `Dataset.compress`.
- JPEG baseline (8-bit): a Pillow-encoded JPEG wrapped with `pydicom.encaps.encapsulate`.
- JPEG lossless (process 14, and selection value 1): GDCM's codec (python-gdcm) on a file we wrote.
- JPEG extended 12-bit: no open encoder writes it reliably; the real NEMA sample MG1_JPLY covers it.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom import dcmread, dcmwrite, uid
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence

MAMMOGRAPHY_FOR_PRESENTATION = uid.DigitalMammographyXRayImageStorageForPresentation

# Identifiers the decoder must never copy into Frame.metadata.
IDENTIFYING_TAGS = {
    "PatientName": "Doe^Jane",
    "PatientID": "PID-0042",
    "PatientBirthDate": "19600101",
    "AccessionNumber": "ACC-7777",
    "InstitutionName": "Saint Example Hospital",
    "ReferringPhysicianName": "House^Gregory",
    "StudyDate": "20240102",
    "OtherPatientIDs": "OTHER-99",
}


def synthetic_pixels(rows: int = 48, cols: int = 40, bits_stored: int = 12, signed: bool = False, seed=0):
    """A smooth gradient plus noise spanning the whole stored range (so min/max scaling is exact)."""
    rng = np.random.default_rng(seed)
    low, high = (-(2 ** (bits_stored - 1)), 2 ** (bits_stored - 1) - 1) if signed else (0, 2**bits_stored - 1)
    ramp = np.linspace(0.0, 1.0, rows * cols).reshape(rows, cols)
    values = low + (high - low) * (0.8 * ramp + 0.2 * rng.random((rows, cols)))
    values = np.rint(values)
    values.flat[0], values.flat[-1] = low, high
    dtype = (np.int8 if signed else np.uint8) if bits_stored <= 8 else (np.int16 if signed else np.uint16)
    return values.astype(dtype)


def make_dataset(
    pixels: np.ndarray,
    *,
    modality: str = "MG",
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    sop_class=MAMMOGRAPHY_FOR_PRESENTATION,
    **tags,
) -> Dataset:
    """A minimal valid single-frame image data set around `pixels` (2-D grey or (rows, cols, 3) RGB)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = uid.generate_uid()
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    ds.Rows, ds.Columns = pixels.shape[:2]
    ds.SamplesPerPixel = 3 if pixels.ndim == 3 else 1
    if pixels.ndim == 3:
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if pixels.dtype.kind == "i" else 0
    for keyword, value in tags.items():
        setattr(ds, keyword, value)
    ds.PixelData = pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()
    return ds


def mammogram(bits_stored: int = 12, signed: bool = False, **tags) -> Dataset:
    """A synthetic 'FOR PRESENTATION' mammogram with the usual acquisition tags."""
    defaults = dict(
        BodyPartExamined="BREAST",
        ViewPosition="CC",
        ImageLaterality="R",
        PresentationIntentType="FOR PRESENTATION",
        Manufacturer="ACME Imaging",
        ImagerPixelSpacing=[0.085, 0.085],
        KVP=28,
    )
    defaults.update(tags)
    return make_dataset(
        synthetic_pixels(bits_stored=bits_stored, signed=signed), bits_stored=bits_stored, **defaults
    )


def to_bytes(ds: Dataset, syntax=uid.ExplicitVRLittleEndian, *, preamble: bool = True) -> bytes:
    """Serialise `ds` natively in one of the four uncompressed transfer syntaxes."""
    ds = _copy(ds)
    ds.file_meta.TransferSyntaxUID = syntax
    if syntax == uid.ExplicitVRBigEndian and ds.BitsAllocated > 8:
        pixels = np.frombuffer(ds.PixelData, dtype="<u2")
        ds.PixelData = pixels.astype(">u2").tobytes()
    if not preamble:  # an old-style bare data set: no preamble, no file meta group
        ds.preamble = None
        del ds.file_meta
    out = io.BytesIO()
    dcmwrite(
        out,
        ds,
        implicit_vr=syntax == uid.ImplicitVRLittleEndian,
        little_endian=syntax != uid.ExplicitVRBigEndian,
        force_encoding=True,
    )
    return out.getvalue()


def compressed_bytes(ds: Dataset, syntax, **encoding_options) -> bytes:
    """`ds` compressed with pydicom's encoders (RLE, JPEG 2000, JPEG-LS)."""
    ds = _copy(ds)
    ds.compress(syntax, **encoding_options)
    return to_file(ds)


def jpeg_baseline_bytes(pixels8: np.ndarray, quality: int = 95, **tags) -> bytes:
    """An 8-bit grey image as a Pillow JPEG encapsulated under JPEG Baseline (process 1)."""
    ds = make_dataset(pixels8.astype(np.uint8), **tags)
    stream = io.BytesIO()
    Image.fromarray(pixels8.astype(np.uint8), mode="L").save(stream, format="JPEG", quality=quality)
    ds.PixelData = encapsulate([stream.getvalue()])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = uid.JPEGBaseline8Bit
    ds.LossyImageCompression = "01"
    return to_file(ds)


def gdcm_jpeg_lossless_bytes(ds: Dataset, syntax=uid.JPEGLosslessSV1) -> bytes:
    """JPEG lossless (process 14 or its selection-value-1 form) through GDCM's encoder."""
    import gdcm  # test-only dependency (requirements-dev.txt)

    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder, "in.dcm"), Path(folder, "out.dcm")
        source.write_bytes(to_bytes(ds))
        reader = gdcm.ImageReader()
        reader.SetFileName(str(source))
        if not reader.Read():
            raise RuntimeError("GDCM could not read the source file")
        change = gdcm.ImageChangeTransferSyntax()
        change.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.GetTSType(str(syntax))))
        change.SetInput(reader.GetImage())
        if not change.Change():
            raise RuntimeError(f"GDCM could not encode {syntax}")
        writer = gdcm.ImageWriter()
        writer.SetFile(reader.GetFile())
        writer.SetImage(change.GetOutput())
        writer.SetFileName(str(target))
        if not writer.Write():
            raise RuntimeError("GDCM could not write the file")
        return target.read_bytes()


def to_file(ds: Dataset) -> bytes:
    """Serialise with the transfer syntax already in `ds.file_meta`."""
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _copy(ds: Dataset) -> Dataset:
    """A deep copy via a round trip (Dataset.copy is shallow for file_meta)."""
    return dcmread(io.BytesIO(to_file(ds)))


# ---- grey-scale variants -------------------------------------------------------------------------


def with_window(ds: Dataset, centers, widths, function: str | None = None) -> Dataset:
    ds.WindowCenter, ds.WindowWidth = centers, widths
    if function:
        ds.VOILUTFunction = function
    return ds


def with_voi_lut(ds: Dataset, lut: np.ndarray, first_mapped: int = 0, bits: int = 16) -> Dataset:
    item = Dataset()
    item.LUTDescriptor = [len(lut) if len(lut) < 65536 else 0, first_mapped, bits]
    item.LUTData = [int(v) for v in lut]
    item["LUTData"].VR = "US"
    ds.VOILUTSequence = Sequence([item])
    return ds


def monochrome1_twin(ds: Dataset) -> Dataset:
    """The same picture stored inverted as MONOCHROME1 (stored' = max - stored, window mirrored)."""
    twin = _copy(ds)
    maximum = 2 ** int(ds.BitsStored) - 1
    pixels = np.frombuffer(ds.PixelData, dtype="<u2" if ds.BitsAllocated == 16 else "u1")
    twin.PixelData = (maximum - pixels).astype(pixels.dtype).tobytes()
    twin.PhotometricInterpretation = "MONOCHROME1"
    if "WindowCenter" in ds:
        twin.WindowCenter = maximum - float(ds.WindowCenter)
    return twin


# ---- refusals ---------------------------------------------------------------------------------------


def structured_report() -> bytes:
    ds = make_dataset(np.zeros((2, 2), np.uint16), modality="SR", sop_class=uid.BasicTextSRStorage)
    for keyword in (
        "Rows",
        "Columns",
        "SamplesPerPixel",
        "PhotometricInterpretation",
        "BitsAllocated",
        "BitsStored",
        "HighBit",
        "PixelRepresentation",
        "PixelData",
    ):
        delattr(ds, keyword)
    item = Dataset()
    item.ValueType, item.TextValue = "TEXT", "No suspicious findings."
    ds.ContentSequence = Sequence([item])
    return to_file(ds)


def encapsulated_pdf() -> bytes:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = uid.EncapsulatedPDFStorage
    ds.file_meta.MediaStorageSOPInstanceUID = uid.generate_uid()
    ds.SOPClassUID, ds.SOPInstanceUID = uid.EncapsulatedPDFStorage, ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "DOC"
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = b"%PDF-1.4\n% a report\n%%EOF\n"
    return to_file(ds)


def multi_frame(frames: int = 3) -> bytes:
    stack = np.stack([synthetic_pixels(seed=i) for i in range(frames)])
    ds = make_dataset(stack[0], bits_stored=12, BodyPartExamined="BREAST")
    ds.NumberOfFrames = frames
    ds.PixelData = stack.astype("<u2").tobytes()
    return to_file(ds)


def rgb_image(modality: str = "MG", coloured: bool = True) -> bytes:
    grey = synthetic_pixels(bits_stored=8)
    rgb = np.stack([grey, grey, grey], axis=-1)
    if coloured:
        rgb[..., 0] = 255 - rgb[..., 0]
    return to_file(
        make_dataset(
            rgb,
            modality=modality,
            photometric="RGB",
            sop_class=uid.UltrasoundImageStorage if modality == "US" else MAMMOGRAPHY_FOR_PRESENTATION,
        )
    )


def unknown_transfer_syntax(syntax: str = "1.2.3.4.5.6.7") -> bytes:
    ds = mammogram()
    ds.PixelData = encapsulate([b"\x00" * 64])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = syntax
    out = io.BytesIO()
    # An unknown UID cannot tell pydicom how to write the data set: write it as explicit little endian
    # (which every compressed syntax uses) and keep the header's claim.
    ds.save_as(out, implicit_vr=False, little_endian=True, enforce_file_format=False)
    return out.getvalue()


def deflate_bomb(rows: int = 2048, cols: int = 2048) -> bytes:
    """A deflated data set of zeros: a few kB on disk, rows*cols*2 bytes once inflated."""
    ds = make_dataset(np.zeros((rows, cols), np.uint16), bits_stored=12, BodyPartExamined="BREAST")
    ds.file_meta.TransferSyntaxUID = uid.DeflatedExplicitVRLittleEndian
    return to_file(ds)
