"""Small DICOM files made in the tests with pydicom (no binary fixtures), and PNGs read back with PyAV."""

from __future__ import annotations

import io

import av
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEGLSLossless,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

PATIENT_NAME = "张三^Zhang San"
PATIENT_ID = "PID-4471"


def gradient(rows: int = 64, columns: int = 64) -> np.ndarray:
    """16-bit values rising left to right by 64 a column (0 to 4032), and by 1 a row."""
    return (np.arange(columns, dtype=np.uint16)[None, :] * 64 + np.arange(rows, dtype=np.uint16)[:, None])


def dicom_file(frames: np.ndarray | None = None, *, window: tuple[float, float] | None = (2048, 1024),
               syntax: str = ExplicitVRLittleEndian, photometric: str = "MONOCHROME2") -> bytes:
    """A MONOCHROME2 16-bit DICOM file of ``frames`` (H×W, or N×H×W for a multi-frame one; a 64×64 gradient by
    default), with a patient's name and ID a viewer must not show, and the tags it should."""
    pixels = gradient() if frames is None else frames
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = PATIENT_NAME, PATIENT_ID, "19560301"
    ds.Modality, ds.StudyDate, ds.BodyPartExamined = "CT", "20261201", "CHEST"
    ds.SeriesDescription = "胸部平扫 Chest plain"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.Rows, ds.Columns = pixels.shape[-2:]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    if pixels.ndim == 3:
        ds.NumberOfFrames = pixels.shape[0]
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelData = np.ascontiguousarray(pixels, dtype="<u2").tobytes()
    if syntax == RLELossless:
        ds.compress(RLELossless)  # pydicom's own encoder: numpy alone
    elif syntax != ExplicitVRLittleEndian:
        # Only the transfer syntax matters to the refusal: nothing decodes these bytes.
        ds.file_meta.TransferSyntaxUID = syntax
        ds.PixelData = encapsulate([b"\xff\xd8\xff\xe0not really a JPEG\xff\xd9"])
        ds["PixelData"].VR = "OB"
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


JPEG_DICOM_SYNTAX = JPEGLSLossless  # no decoder here for it, with or without Pillow


def png_pixels(png: bytes) -> np.ndarray:
    """A PNG decoded by FFmpeg (through PyAV), as an H×W grey array: proof it is a PNG others can read."""
    with av.open(io.BytesIO(png), format="png_pipe") as container:
        frame = next(container.decode(video=0))
        return frame.to_ndarray(format="gray")
