"""A Chromium viewer behind the impaired link, for ``telemed bench impairment --browser`` and its test: what a
patient's browser does (its own jitter buffer, loss concealment, NACKs and bandwidth estimate) where
media/impairment_viewer.py is an aiortc peer.

Debian's Chromium runs inside the link's network namespace (``ip netns exec``, through a small wrapper that
Playwright starts as the browser), on a blank page that makes the same receive-only offer as the aiortc
viewer; the offer and the relay's answer travel through Playwright, so no web server is needed. Every 100 ms
the page's ``getStats()`` is read and turned into what :class:`media.impairment.Seen` keeps: video frames
decoded (with their size), audio frames of 20 ms played (the first of each reading carrying the sound
concealed since the last), and the audio packets received and lost.

Playwright and Chromium are what the tests install (``make install-test``); the benchmark says so where they
are missing."""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import stat
import tempfile
import time
from pathlib import Path
from typing import Any

from .impairment_viewer import OPUS_RATE
from .netns import ImpairedLink

SAMPLE_SECONDS = 0.1
AUDIO_FRAME = OPUS_RATE // 50  # samples in 20 ms
FLAGS = [
    "--no-sandbox",  # run as root, as the namespace needs
    "--disable-gpu",
    "--autoplay-policy=no-user-gesture-required",  # the <audio> plays, so the sound is decoded and counted
    # Chromium hides its host addresses behind mDNS names, which aiortc cannot resolve: show them.
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--disable-background-networking",
    "--no-first-run",
]

OFFER = """async (slots) => {
  const pc = new RTCPeerConnection({bundlePolicy: "max-bundle"});
  for (let i = 0; i < slots; i++) {
    pc.addTransceiver("audio", {direction: "recvonly"});
    pc.addTransceiver("video", {direction: "recvonly"});
  }
  pc.ontrack = ({track}) => {
    const element = document.createElement(track.kind);
    element.autoplay = true;
    element.muted = track.kind === "video";
    element.srcObject = new MediaStream([track]);
    document.body.append(element);
  };
  window.viewer = pc;
  await pc.setLocalDescription(await pc.createOffer());
  if (pc.iceGatheringState !== "complete") {
    await new Promise((resolve) => pc.addEventListener("icegatheringstatechange",
      () => pc.iceGatheringState === "complete" && resolve()));
  }
  return pc.localDescription.sdp;
}"""

ANSWER = """async (sdp) => { await window.viewer.setRemoteDescription({type: "answer", sdp}); }"""

# Summed over the page's receivers: video frames decoded and the size of the latest, audio samples played and
# concealed, audio packets received and lost.
STATS = """async () => {
  const total = {frames: 0, width: 0, height: 0, samples: 0, concealed: 0, received: 0, lost: 0};
  (await window.viewer.getStats()).forEach((r) => {
    if (r.type !== "inbound-rtp") return;
    if (r.kind === "video") {
      total.frames += r.framesDecoded || 0;
      if (r.frameWidth) [total.width, total.height] = [r.frameWidth, r.frameHeight];
    } else {
      total.samples += r.totalSamplesReceived || 0;
      total.concealed += r.concealedSamples || 0;
      total.received += r.packetsReceived || 0;
      total.lost += r.packetsLost || 0;
    }
  });
  return total;
}"""


class BrowserUnavailable(RuntimeError):
    """No Chromium or Playwright here; the message says what to install."""


class BrowserViewer:
    """A Chromium page as a relay viewer; ``seen`` fills as :class:`media.impairment.ViewerProcess`'s does."""

    def __init__(self) -> None:
        from .impairment import Seen

        self.seen = Seen()
        self._playwright: Any = None
        self._browser: Any = None
        self._page: Any = None
        self._wrapper: Path | None = None
        self._sampling: asyncio.Future[None] | None = None
        self._slots = 0

    @classmethod
    async def start(cls, slots: int, link: ImpairedLink | None = None) -> BrowserViewer:
        try:
            from playwright.async_api import async_playwright
        except ImportError as error:
            raise BrowserUnavailable("Playwright is missing: `make install-test` installs it") from error
        chromium = os.environ.get("TELEMED_TEST_CHROMIUM") or shutil.which("chromium")
        if chromium is None:
            raise BrowserUnavailable("Chromium is missing: `make install-test` installs Debian's")
        viewer = cls()
        viewer._slots = slots
        executable = chromium
        if link is not None:  # the whole browser in the namespace: Playwright talks to it over inherited pipes
            fd, name = tempfile.mkstemp(prefix="telemed-chromium-", suffix=".sh")
            with os.fdopen(fd, "w") as wrapper:
                wrapper.write(f'#!/bin/sh\nexec {shlex.join(link.command(chromium))} "$@"\n')
            viewer._wrapper = Path(name)
            viewer._wrapper.chmod(stat.S_IRWXU)
            executable = name
        viewer._playwright = await async_playwright().start()
        try:
            viewer._browser = await viewer._playwright.chromium.launch(executable_path=executable, headless=True,
                                                                        args=FLAGS)
            viewer._page = await viewer._browser.new_page()
        except Exception:
            await viewer.close()
            raise
        return viewer

    async def join(self, relay: Any, participant_id: str) -> None:
        offer = await self._page.evaluate(OFFER, self._slots)
        answer = await relay.answer(participant_id, offer)
        await self._page.evaluate(ANSWER, answer)
        self._sampling = asyncio.ensure_future(self._sample())

    async def _sample(self) -> None:
        last: dict[str, int] = {}
        while True:
            now_stats = await self._page.evaluate(STATS)
            now = time.monotonic()
            if last:
                frames = now_stats["frames"] - last["frames"]
                size = f"{now_stats['width']}x{now_stats['height']}"
                self.seen.video.extend((now, size) for _ in range(max(0, frames)))
                played = max(0, now_stats["samples"] - last["samples"])
                concealed = max(0, now_stats["concealed"] - last["concealed"])
                count = round(played / AUDIO_FRAME)
                self.seen.audio.extend((now, round(concealed * 1000 / OPUS_RATE, 1) if i == 0 else 0.0)
                                       for i in range(count))
            self.seen.packets.append((now, now_stats["received"], now_stats["lost"]))
            last = now_stats
            await asyncio.sleep(SAMPLE_SECONDS)

    async def close(self) -> None:
        if self._sampling is not None:
            self._sampling.cancel()
            await asyncio.gather(self._sampling, return_exceptions=True)
        if self._browser is not None:
            await self._browser.close()
        if self._playwright is not None:
            await self._playwright.stop()
        if self._wrapper is not None:
            self._wrapper.unlink(missing_ok=True)
