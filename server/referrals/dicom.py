"""DICOM images drawn as PNG for the viewer beside the call: one frame, windowed for a screen, in memory only.

Pure: bytes in, a ``Rendering`` out, no I/O, so the caller decides who may see it and audits it. Windowing
follows DICOM PS3.3 C.11.2.1.2 (the LINEAR function) on values after the modality LUT (rescale slope and
intercept), with the file's first Window Center/Width, or the frame's own minimum and maximum when the file
names none. Only the patient-free facts a specialist reads the image by are taken from the file: never the
patient's name, ID or birth date, which the referral already shows under the hospital's rules.

Decoded without extra packages: the uncompressed transfer syntaxes (implicit and explicit VR little endian,
explicit VR big endian, deflated explicit VR little endian) and RLE Lossless, which pydicom decodes with
numpy alone. JPEG (baseline, extended, lossless, JPEG-LS), JPEG 2000, HTJ2K, JPEG XL and the video syntaxes
need pylibjpeg, GDCM or Pillow plug-ins that are not installed: ``DicomCompressed`` for those.
"""

from __future__ import annotations

import base64
import io
import struct
import zlib
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pydantic
import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, apply_modality_lut, pixel_array
from pydicom.pixels.decoders.base import get_decoder

from ..errors import N_, ErrorCode, TelemedError, ValidationFailed
from ..outputs import Out

MAX_PIXELS = 64 * 1024 * 1024  # a frame larger than any radiograph; beyond it a file is more likely a trap


class NoPreview(TelemedError):
    """An attachment the server cannot draw: not DICOM, unreadable, or without an image."""

    kind = ErrorCode.NO_PREVIEW


class DicomCompressed(TelemedError):
    """A DICOM image in a transfer syntax that needs a decoder this server does not have."""

    kind = ErrorCode.DICOM_COMPRESSED


@dataclass(frozen=True)
class Window:
    """The values shown from black to white: ``center`` and ``width`` as DICOM means them; ``source`` is
    ``file`` when the file named them, ``min-max`` when they span the frame's values."""

    center: float
    width: float
    source: Literal["file", "min-max"]


class WindowShown(Out):
    center: float
    width: float
    source: Literal["file", "min-max"]


class DicomPreview(Out):
    """A DICOM frame drawn as PNG (``image``, a ``data:`` URL), the window it was drawn under (null for colour),
    and the facts to read it by when the file has them (a fact it lacks is left out, not null)."""

    width: int
    height: int
    frame: int
    frames: int
    window: WindowShown | None
    modality: str | None = None
    study_date: str | None = None
    body_part: str | None = None
    series_description: str | None = None
    image: str

    @pydantic.model_serializer(mode="wrap")
    def _facts_it_has(self, handler: pydantic.SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {k: v for k, v in handler(self).items() if v is not None or k not in FACTS.values()}


@dataclass(frozen=True)
class Rendering:
    """One frame as an 8-bit PNG, and what the viewer shows beside it."""

    png: bytes
    width: int
    height: int
    frame: int  # from 0
    frames: int
    window: Window | None  # None for colour images, shown as they are
    facts: dict[str, str]  # modality, study_date, body_part, series_description, when the file has them

    def shown(self) -> DicomPreview:
        window = None if self.window is None else WindowShown(center=self.window.center, width=self.window.width,
                                                              source=self.window.source)
        return DicomPreview(width=self.width, height=self.height, frame=self.frame, frames=self.frames,
                            window=window, **self.facts,
                            image="data:image/png;base64," + base64.b64encode(self.png).decode())


# Tags a specialist reads an image by, and the key each goes out under. Nothing that names the patient.
FACTS = {"Modality": "modality", "StudyDate": "study_date", "BodyPartExamined": "body_part",
         "SeriesDescription": "series_description"}


def window_linear(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """PS3.3 C.11.2.1.2.1: values at or below ``c - 0.5 - (w-1)/2`` black, above ``c - 0.5 + (w-1)/2``
    white, linear between; 8 bits out."""
    width = max(width, 1.0)
    low, high = center - 0.5 - (width - 1) / 2, center - 0.5 + (width - 1) / 2
    scaled = ((values - (center - 0.5)) / (width - 1 or 1) + 0.5) * 255.0
    out = np.where(values <= low, 0.0, np.where(values > high, 255.0, scaled))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _number(value: object) -> float | None:
    """The first of a possibly multi-valued DS (Window Center may hold one per window)."""
    if value is None:
        return None
    if isinstance(value, (list, tuple, MultiValue)):
        value = value[0] if len(value) else None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def chosen_window(dataset: pydicom.Dataset, values: np.ndarray) -> Window:
    center, width = _number(dataset.get("WindowCenter")), _number(dataset.get("WindowWidth"))
    if center is not None and width is not None and width >= 1:
        return Window(center, width, "file")
    low, high = float(values.min()), float(values.max())
    # The min-max window as LINEAR reads it: low black, high white.
    return Window((low + high + 1) / 2, max(high - low + 1, 1.0), "min-max")


def _fact(dataset: pydicom.Dataset, keyword: str) -> str | None:
    value = dataset.get(keyword)
    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip()
    if keyword == "StudyDate" and len(text) == 8 and text.isdigit():
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return text[:200]


def encode_png(pixels: np.ndarray) -> bytes:
    """An 8-bit greyscale (H×W) or RGB (H×W×3) array as PNG, unfiltered rows deflated: enough for a viewer,
    and no image library to install."""
    height, width = pixels.shape[:2]
    colour = 2 if pixels.ndim == 3 else 0
    rows = np.ascontiguousarray(pixels, dtype=np.uint8).reshape(height, -1)
    raw = np.hstack([np.zeros((height, 1), dtype=np.uint8), rows]).tobytes()  # filter type 0 on each row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6))
            + chunk(b"IEND", b""))


def _read(data: bytes) -> pydicom.Dataset:
    try:
        return pydicom.dcmread(io.BytesIO(data))
    except (InvalidDicomError, EOFError, ValueError, KeyError, TypeError, struct.error, OSError):
        raise NoPreview(N_("This DICOM file cannot be read.")) from None


def render(data: bytes, frame: int = 0) -> Rendering:
    """Frame ``frame`` (from 0) of a DICOM file's image as a PNG: 422 ``no-preview`` if the file cannot be read
    or holds no image, 422 ``dicom-compressed`` if its compression needs a decoder this server lacks, 422
    ``validation-failed`` for a frame it does not have."""
    dataset = _read(data)
    if "PixelData" not in dataset:
        raise NoPreview(N_("This DICOM file holds no image."))
    meta = getattr(dataset, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if syntax is not None:
        try:
            available = get_decoder(syntax).is_available
        except NotImplementedError:
            available = False
        if not available:
            raise DicomCompressed(N_("This DICOM image is compressed in a way the viewer cannot show. Download "
                                     "the file and open it in a DICOM viewer."),
                                  transfer_syntax=str(syntax), transfer_syntax_name=getattr(syntax, "name", ""))
    frames = int(_number(dataset.get("NumberOfFrames")) or 1)
    if not 0 <= frame < frames:
        raise ValidationFailed({"frame": f"a frame from 0 to {frames - 1}"})
    rows, columns = int(dataset.get("Rows") or 0), int(dataset.get("Columns") or 0)
    if rows * columns == 0 or rows * columns > MAX_PIXELS:
        raise NoPreview(N_("This DICOM file holds no image."))
    try:
        pixels = pixel_array(dataset, index=frame)
    except (ValueError, AttributeError, TypeError, KeyError, RuntimeError, NotImplementedError):
        raise NoPreview(N_("This DICOM file cannot be read.")) from None
    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    facts = {key: text for keyword, key in FACTS.items() if (text := _fact(dataset, keyword))}
    if photometric == "PALETTE COLOR":
        pixels, photometric = apply_color_lut(pixels, dataset), "RGB"
    if pixels.ndim == 3:  # colour (pydicom has already turned YBR into RGB)
        if pixels.dtype != np.uint8:
            bits = int(dataset.get("BitsStored") or 8)
            pixels = (pixels.astype(np.float64) * (255.0 / ((1 << bits) - 1))).clip(0, 255).astype(np.uint8)
        return Rendering(encode_png(pixels), columns, rows, frame, frames, None, facts)
    values = np.asarray(apply_modality_lut(pixels, dataset), dtype=np.float64)
    window = chosen_window(dataset, values)
    shown = window_linear(values, window.center, window.width)
    if photometric == "MONOCHROME1":  # the lowest value is white
        shown = 255 - shown
    return Rendering(encode_png(shown), columns, rows, frame, frames, window, facts)
