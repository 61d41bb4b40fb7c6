"""Open a page in headless Chromium and say what went wrong, for the report tests.

Drives Chromium through the DevTools protocol over a pipe (``--remote-debugging-pipe``:
JSON messages ended by a NUL byte on file descriptors 3 and 4), so it needs no Python
package: it loads the page, waits for its load event, and collects every console
message of level warning or error, every uncaught exception, every failed load, every
request that leaves the machine and every image that did not decode.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

#: Names the Debian package and other builds install Chromium under.
NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: Starts Chromium with the pipe ends given as its descriptors 3 and 4.
LAUNCH = (
    "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
    "os.execv(sys.argv[3], sys.argv[3:])"
)
#: What the page reports about itself once loaded (read by Runtime.evaluate).
PROBE = """JSON.stringify({
  images: Array.from(document.images).map(i => [i.alt, i.complete && i.naturalWidth > 0]),
  sections: Array.from(document.querySelectorAll("section[id]")).map(s => s.id),
  text: document.body ? document.body.innerText : "",
  width: document.documentElement.scrollWidth,
  height: document.documentElement.scrollHeight,
})"""


def chromium() -> str | None:
    """The Chromium executable on the PATH, or None."""
    return next((found for name in NAMES if (found := shutil.which(name))), None)


@dataclass
class Rendered:
    """What a page did when Chromium loaded it: ``problems`` (console warnings and
    errors, exceptions, failed loads, requests off the machine, broken images, each in
    words), ``images`` (alt text and whether it decoded), the ``sections``' ids, the
    visible ``text``."""

    problems: list[str] = field(default_factory=list)
    images: list[tuple[str, bool]] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)
    text: str = ""


class Browser:
    """One headless Chromium, spoken to over its DevTools pipe."""

    def __init__(self, executable: str, timeout: float = 60.0):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="bpm-chromium-")
        self.log = open(Path(self.profile) / "stderr.txt", "wb")  # what Chromium says
        commands, self.commands = os.pipe()  # we write, Chromium reads fd 3
        self.replies, replies = os.pipe()  # Chromium writes fd 4, we read
        # the child's ends above 9, so that moving them onto 3 and 4 overwrites neither
        commands, replies = (above(fd, 10) for fd in (commands, replies))
        argv = [executable, "--headless", "--no-sandbox", "--disable-gpu",
                "--remote-debugging-pipe", f"--user-data-dir={self.profile}",
                "--no-first-run", "--no-default-browser-check", "about:blank"]  # fmt: skip
        self.process = subprocess.Popen(
            [sys.executable, "-c", LAUNCH, str(commands), str(replies), *argv],
            pass_fds=(commands, replies),
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        os.close(commands)
        os.close(replies)
        self.buffer = b""
        self.last = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Call ``method`` and return its result (an error reply raises)."""
        self.last += 1
        message = {"id": self.last, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        try:
            os.write(self.commands, json.dumps(message).encode() + b"\0")
        except BrokenPipeError:
            raise EOFError(f"Chromium exited; it said: {self.said()}") from None
        reply = self.wait(lambda m: m.get("id") == self.last)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def wait(self, wanted) -> dict:
        """The next message for which ``wanted`` is true; the others are kept as events."""
        end = time.monotonic() + self.timeout
        while True:
            while b"\0" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\0", 1)
                message = json.loads(raw)
                if wanted(message):
                    return message
                self.events.append(message)
            left = end - time.monotonic()
            if left <= 0 or not select.select([self.replies], [], [], left)[0]:
                raise TimeoutError(f"Chromium did not answer within {self.timeout} s")
            chunk = os.read(self.replies, 1 << 20)
            if not chunk:
                raise EOFError(f"Chromium closed its DevTools pipe; it said: {self.said()}")
            self.buffer += chunk

    def said(self) -> str:
        """The end of what Chromium wrote to its standard error."""
        self.log.flush()
        return (Path(self.profile) / "stderr.txt").read_text(errors="replace")[-2000:]

    def close(self) -> None:
        try:
            self.send("Browser.close")
            self.process.wait(10)
        except (OSError, EOFError, TimeoutError, RuntimeError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        finally:
            os.close(self.commands)
            os.close(self.replies)
            self.log.close()
            shutil.rmtree(self.profile, ignore_errors=True)


def above(fd: int, lowest: int) -> int:
    """``fd`` moved to a descriptor number of at least ``lowest`` (the old one closed)."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, lowest)
    os.close(fd)
    return moved


def render(path: Path, screenshot: Path | None = None, width: int = 1200) -> Rendered:
    """Load ``path`` in headless Chromium (``width`` CSS pixels wide) and say what went
    wrong; ``screenshot``: also write the whole page there as a PNG."""
    browser = Browser(chromium() or "chromium")
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        attached = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})
        session = attached["sessionId"]
        for domain in ("Runtime", "Log", "Page", "Network"):
            browser.send(f"{domain}.enable", session=session)
        browser.send("Emulation.setDeviceMetricsOverride",
                     {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False},
                     session=session)  # fmt: skip
        browser.send("Page.navigate", {"url": Path(path).resolve().as_uri()}, session=session)
        browser.wait(lambda m: m.get("method") == "Page.loadEventFired")
        found = browser.send(
            "Runtime.evaluate", {"expression": PROBE, "returnByValue": True}, session=session
        )
        probe = json.loads(found["result"]["value"])
        if screenshot is not None:
            clip = {"x": 0, "y": 0, "width": probe["width"], "height": probe["height"], "scale": 1}
            shot = browser.send("Page.captureScreenshot",
                                {"format": "png", "clip": clip, "captureBeyondViewport": True},
                                session=session)  # fmt: skip
            Path(screenshot).write_bytes(base64.b64decode(shot["data"]))
    finally:
        browser.close()
    images = [(alt, bool(ok)) for alt, ok in probe["images"]]
    problems = [
        *problems_in(browser.events),
        *(f"image did not load: {a}" for a, ok in images if not ok),
    ]
    return Rendered(problems, images, probe["sections"], probe["text"])


def problems_in(events: list[dict]) -> list[str]:
    """Console warnings and errors, exceptions, failed loads and requests off the
    machine among DevTools ``events``, in words."""
    out = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in (
            "error",
            "warning",
            "assert",
        ):
            words = " ".join(
                str(a.get("value", a.get("description", ""))) for a in params.get("args", [])
            )
            out.append(f"console {params['type']}: {words}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            out.append(
                f"exception: {details.get('exception', {}).get('description', details.get('text'))}"
            )
        elif method == "Log.entryAdded" and params["entry"].get("level") in ("error", "warning"):
            out.append(f"log {params['entry']['level']}: {params['entry'].get('text')}")
        elif method == "Network.loadingFailed":
            out.append(f"failed to load: {params.get('errorText')}")
        elif method == "Network.requestWillBeSent":
            url = params.get("request", {}).get("url", "")
            if not url.startswith(("file:", "data:", "about:")):
                out.append(f"request off the machine: {url}")
    return out
