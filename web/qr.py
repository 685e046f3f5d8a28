"""QR codes of links, drawn on the server as SVG: a patient's phone camera opens the invitation from the
doctor's screen. A ``data:`` URI, which the Content-Security-Policy's ``img-src 'self' data:`` allows, so the
page needs no script and no image file."""

from __future__ import annotations

import segno


def svg_data_uri(text: str) -> str:
    """``text`` as a QR code (error correction M: it survives a smudged or glaring screen), as an SVG data URI
    with its quiet zone and a viewBox (no size: the stylesheet sizes it), to put in an ``<img src>``."""
    return segno.make(text, error="m", micro=False).svg_data_uri(border=4, dark="#1d2733", light="#fff", omitsize=True)
