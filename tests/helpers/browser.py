"""The offline page of ``cnnlab explore``: its embedded data, and headless Chromium.

The browser tests skip when ``chromium`` is missing, except under CI (env ``CI`` set), where
they fail.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def f32(s: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s), dtype="<f4")


def page_data(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    m = re.search(r'<script id="cnnlab-data" type="application/json">(.*?)</script>', text, re.S)
    return json.loads(m.group(1).replace("<\\/", "</"))


class _Dom(HTMLParser):
    """Attributes of <body> and the data-layer boxes (outside <script>) of a dumped DOM."""

    def __init__(self):
        super().__init__()
        self.body: dict = {}
        self.layers: list[str] = []
        self.texts: list[str] = []
        self._script = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script":
            self._script = True
        elif tag == "body":
            self.body = a
        if "data-layer" in a:
            self.layers.append(a["data-layer"])

    def handle_endtag(self, tag):
        if tag == "script":
            self._script = False

    def handle_data(self, data):
        if not self._script:
            self.texts.append(data)


def need_chromium():
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing under CI: .ci/run installs it with apt-get")
        pytest.skip("chromium is not installed (apt-get install chromium)")


def browse(path: Path, fragment: str = "", screenshot: Path | None = None):
    """Dump the DOM of ``path`` after its script ran; optionally also save a screenshot."""
    import tempfile

    url = path.resolve().as_uri() + (f"#{fragment}" if fragment else "")
    profile = tempfile.mkdtemp(prefix="cnnlab-chromium-")  # a fresh profile: no shared lock
    base = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--run-all-compositor-stages-before-draw",  # screenshots of scrolled pages
            f"--user-data-dir={profile}",
            "--no-first-run", "--disable-extensions", "--virtual-time-budget=20000",
            "--enable-logging=stderr", "--v=0"]
    proc = subprocess.run([*base, "--dump-dom", url], capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines()
               if "CONSOLE" in line and ("Uncaught" in line or "rror" in line)]
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([*base, "--window-size=1600,1000", f"--screenshot={screenshot}", url],
                       capture_output=True, timeout=180, check=True)
    shutil.rmtree(profile, ignore_errors=True)
    dom = _Dom()
    dom.feed(proc.stdout)
    return dom, console
