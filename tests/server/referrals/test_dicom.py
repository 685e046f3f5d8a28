"""DICOM drawn for the viewer: the file's window applied (or the frame's own range), MONOCHROME1 inverted, the
frame asked for, RLE decoded with numpy alone, JPEG refused by name, and the patient's identity left out."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.uid import RLELossless

from server.errors import ValidationFailed
from server.referrals.dicom import DicomCompressed, NoPreview, encode_png, render, window_linear

from ...support.dicom import JPEG_DICOM_SYNTAX, PATIENT_ID, PATIENT_NAME, dicom_file, gradient, png_pixels


@pytest.mark.parametrize(("value", "center", "width", "shown"), [
    (1535, 2048, 1024, 0),  # at or below c - 0.5 - (w-1)/2 = 1536: black
    (1536, 2048, 1024, 0),
    (2047.5, 2048, 1024, 128),  # the centre: half grey
    (2560, 2048, 1024, 255),  # above c - 0.5 + (w-1)/2 = 2559: white
    (-1000, 40, 400, 0),  # a CT soft-tissue window: air is black
    (40, 40, 400, 128),
    (1000, 40, 400, 255),  # bone is white
    (5, 5, 1, 255),  # a width of 1 is a threshold
    (4, 5, 1, 0),
])
def test_the_linear_window(value: float, center: float, width: float, shown: int) -> None:
    """PS3.3's LINEAR window function, at its edges and centre."""
    assert window_linear(np.array([value], dtype=np.float64), center, width)[0] == shown


def test_a_png_of_our_own_is_read_by_ffmpeg() -> None:
    """The PNG writer (no image library) makes files another decoder reads back pixel for pixel."""
    pixels = (np.arange(35 * 20, dtype=np.uint32) % 251).astype(np.uint8).reshape(20, 35)
    assert np.array_equal(png_pixels(encode_png(pixels)), pixels)


def test_the_file_s_window_is_applied() -> None:
    """A 64×64 16-bit gradient (0 to 4095) under the file's window 2048/1024: black to its left edge,
    white past its right, and grey rising in between, so the window (not a min-max stretch) drew it."""
    rendering = render(dicom_file(window=(2048, 1024)))
    assert (rendering.width, rendering.height, rendering.frames) == (64, 64, 1)
    assert rendering.window is not None and rendering.window.source == "file"
    pixels = png_pixels(rendering.png)
    assert pixels.shape == (64, 64)
    assert pixels[0, 23] == 0 and pixels[0, 24] == 0  # 1472 and 1536: at or below the window's floor
    assert pixels[0, 32] == 128  # 2048, the centre
    assert pixels[0, 41] == 255 and pixels[0, 63] == 255  # 2624 and above: white
    assert 0 < pixels[0, 28] < 128 < pixels[0, 36] < 255


def test_without_a_window_the_frame_s_range_is_spread_from_black_to_white() -> None:
    """A file without a window is drawn from the frame's own range: its lowest value black, its highest white, mid
    grey between, the window reported as min-max."""
    rendering = render(dicom_file(window=None))
    pixels = png_pixels(rendering.png)
    assert rendering.window is not None and rendering.window.source == "min-max"
    assert pixels[0, 0] == 0 and pixels[63, 63] == 255 and 120 < pixels[32, 32] < 136


def test_monochrome1_is_inverted() -> None:
    """MONOCHROME1 means the lowest value is white (as on a film)."""
    pixels = png_pixels(render(dicom_file(photometric="MONOCHROME1")).png)
    assert pixels[0, 0] == 255 and pixels[0, 63] == 0


def test_each_frame_of_a_multi_frame_image() -> None:
    """Frame 2 of three is frame 2: each is brighter than the one before under the same window."""
    frames = np.stack([gradient() // 4 + 1000 * k for k in range(3)])  # within the file's 12 bits
    means = []
    for frame in range(3):
        rendering = render(dicom_file(frames, window=(3000, 6000)), frame)
        assert (rendering.frame, rendering.frames) == (frame, 3)
        means.append(float(png_pixels(rendering.png).mean()))
    assert means[0] + 30 < means[1] < means[2] - 30
    with pytest.raises(ValidationFailed):
        render(dicom_file(frames), 3)


def test_the_facts_shown_and_the_identity_left_out() -> None:
    """Modality, study date, body part and series description go out; the patient's name and ID do not."""
    rendering = render(dicom_file())
    assert rendering.facts == {"modality": "CT", "study_date": "2026-12-01", "body_part": "CHEST",
                               "series_description": "胸部平扫 Chest plain"}
    answer = rendering.shown().model_dump_json()
    for identity in (PATIENT_NAME, "Zhang San", PATIENT_ID, "19560301"):
        assert identity not in answer


def test_rle_is_decoded_without_plug_ins() -> None:
    """An RLE Lossless file is drawn pixel for pixel as the same image uncompressed, with what the server installs
    and no decoder plug-in."""
    assert np.array_equal(png_pixels(render(dicom_file(syntax=RLELossless)).png), png_pixels(render(dicom_file()).png))


def test_a_compression_without_a_decoder_is_named() -> None:
    """JPEG needs a plug-in this server does not install: 422 dicom-compressed, naming the syntax."""
    with pytest.raises(DicomCompressed) as refused:
        render(dicom_file(syntax=JPEG_DICOM_SYNTAX))
    assert refused.value.status == 422 and refused.value.details["transfer_syntax"] == "1.2.840.10008.1.2.4.80"


@pytest.mark.parametrize("data", [b"not a DICOM file" * 20, bytes(128) + b"DICM" + bytes(64)])
def test_unreadable_files_and_files_without_an_image(data: bytes) -> None:
    """Each row: a file that is not DICOM, or a DICOM header with no image, is refused with 422 as having no preview."""
    with pytest.raises(NoPreview) as refused:
        render(data)
    assert refused.value.status == 422
