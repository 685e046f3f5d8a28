"""What the media tests share."""

from __future__ import annotations

import pytest
from aiortc import rtcrtpreceiver


@pytest.fixture
def decoders_made(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The codec of every decoder aiortc's receivers create during the test."""
    made: list[str] = []
    real = rtcrtpreceiver.get_decoder

    def spy(codec):  # type: ignore[no-untyped-def]
        made.append(codec.name)
        return real(codec)
    monkeypatch.setattr(rtcrtpreceiver, "get_decoder", spy)
    return made
