"""Drive Debian's Firefox through WebDriver BiDi, which Firefox speaks natively: no geckodriver, no patched build.

Just enough of the protocol for end-to-end tests: open a page, navigate, evaluate script.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import shutil
from pathlib import Path
from typing import Any

import aiohttp

# Fake camera and microphone, no permission prompt, and ICE over 127.0.0.1 where the test server lives.
PREFERENCES = {
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
    "media.peerconnection.ice.loopback": True,
    "media.peerconnection.ice.obfuscate_host_addresses": False,
    "media.autoplay.default": 0,
    "intl.accept_languages": "en-US",
    # Quiet: no update checks, telemetry or first-run pages reaching for a network this machine lacks.
    "app.update.disabledForTesting": True,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "extensions.update.enabled": False,
}


def firefox_path() -> str | None:
    return shutil.which("firefox-esr") or shutil.which("firefox")


class BidiError(RuntimeError):
    pass


class Firefox:
    """One headless Firefox process with one BiDi session and its first tab."""

    def __init__(self, profile: Path) -> None:
        self.profile = profile
        self.process: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[bytes] | None = None
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)
        self.context = ""

    async def start(self) -> None:
        binary = firefox_path()
        if binary is None:
            raise RuntimeError("Firefox is not installed: the test command installs Debian's firefox-esr")
        self.profile.mkdir(parents=True, exist_ok=True)
        (self.profile / "user.js").write_text(
            "".join(f'user_pref("{key}", {json.dumps(value)});\n' for key, value in PREFERENCES.items()))
        self.process = await asyncio.create_subprocess_exec(
            binary, "--headless", "--no-remote", "--profile", str(self.profile), "--remote-debugging-port=0",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        url = await asyncio.wait_for(self._read_listening_url(), 60)
        self._http = aiohttp.ClientSession()
        self._ws = await self._http.ws_connect(f"{url}/session", max_msg_size=0)
        await self.send("session.new", {"capabilities": {}})
        tree = await self.send("browsingContext.getTree", {})
        self.context = tree["contexts"][0]["context"]

    async def _read_listening_url(self) -> str:
        assert self.process is not None and self.process.stderr is not None
        while line := (await self.process.stderr.readline()).decode(errors="replace"):
            if match := re.search(r"WebDriver BiDi listening on (ws://\S+)", line):
                # Keep draining stderr so Firefox never blocks on a full pipe.
                self._drain = asyncio.create_task(self.process.stderr.read())
                return match.group(1)
        raise RuntimeError("Firefox exited before offering WebDriver BiDi")

    async def send(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        assert self._ws is not None
        command_id = next(self._ids)
        await self._ws.send_json({"id": command_id, "method": method, "params": params})
        while True:
            message = await self._ws.receive_json(timeout=60)
            if message.get("id") != command_id:
                continue  # an event, or an answer to nobody we wait for
            if message.get("type") == "error":
                raise BidiError(f"{method}: {message.get('error')}: {message.get('message')}")
            return message["result"]

    async def goto(self, url: str) -> None:
        await self.send("browsingContext.navigate", {"context": self.context, "url": url, "wait": "complete"})

    async def evaluate(self, expression: str) -> Any:
        """Evaluate JavaScript in the page; the value comes back through JSON.stringify."""
        result = await self.send("script.evaluate", {
            "expression": f"(async () => JSON.stringify(await ({expression})))()",
            "target": {"context": self.context},
            "awaitPromise": True,
        })
        if result.get("type") == "exception":
            raise BidiError(f"script failed: {result['exceptionDetails'].get('text')}")
        value = result["result"].get("value")
        return None if value is None else json.loads(value)

    async def wait_for(self, expression: str, within: float = 30) -> Any:
        """Poll ``expression`` until it is truthy; return its value."""
        deadline = asyncio.get_running_loop().time() + within
        value = None
        while asyncio.get_running_loop().time() < deadline:
            try:
                value = await self.evaluate(expression)
            except BidiError:
                value = None  # the page is navigating; ask again
            if value:
                return value
            await asyncio.sleep(0.25)
        raise AssertionError(f"never true in Firefox: {expression} (last value {value!r})")

    async def close(self) -> None:
        if self._ws is not None:
            try:
                await asyncio.wait_for(self.send("session.end", {}), 5)
            except (BidiError, TimeoutError, aiohttp.ClientError):
                pass
            await self._ws.close()
        if self._http is not None:
            await self._http.close()
        if self.process is not None:
            self.process.kill()
            await asyncio.wait_for(self.process.wait(), 10)
        if self._drain is not None:
            await self._drain
