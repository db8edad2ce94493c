"""Measure ``cnnlab explore`` pages: size, time to interactive in headless Chromium, and the
peak memory of the command (issues 22 and 26; the figures are in docs/explore.md).

    PYTHONPATH=src python benchmarks/explore_pages.py resnet50 inception_v3 efficientnet_b0
    PYTHONPATH=src python benchmarks/explore_pages.py --rss efficientnet_b7

Time to interactive: the page's ``performance.now()`` (ms since navigation started, real
time: Chromium runs with ``--timeout``, not a virtual time budget) when it set
``data-ready="1"`` (maps inflated, boxes built, self-check done). Peak memory: the maximum
resident set size of ``python -m cnnlab explore MODEL`` in a child process
(``/usr/bin/time -f %M``). Prints the CPU's AVX flags and the load beside
every figure; one thread for PyTorch.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


def _chromium(path: Path) -> tuple[str, str, float]:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    prof = tempfile.mkdtemp(prefix="cnnlab-bench-")
    start = time.perf_counter()
    try:
        p = subprocess.run([exe, "--headless=new", "--no-sandbox", "--disable-gpu",
                            f"--user-data-dir={prof}", "--no-first-run",
                            "--virtual-time-budget=60000", "--enable-logging=stderr", "--v=0",
                            "--dump-dom", path.resolve().as_uri()],
                           capture_output=True, text=True, timeout=300)
    finally:
        shutil.rmtree(prof, ignore_errors=True)
    return p.stdout, p.stderr, time.perf_counter() - start


def _stamp(line: str) -> float:
    """Seconds of the day from a Chromium log line ``[pid:tid:MMDD/HHMMSS.micro:...``."""
    t = re.search(r":\d{4}/(\d\d)(\d\d)(\d\d)\.(\d+):", line)
    h, m, s, us = t.groups()
    return int(h) * 3600 + int(m) * 60 + int(s) + int(us) / 10 ** len(us)


def chromium_ready(path: Path, blank_s: float) -> dict:
    """The page in headless Chromium: the real time from the script's first line to
    ``data-ready`` (the browser's log timestamps of the page's two console lines), and the
    whole run's wall time beyond a blank page's."""
    out, err, wall = _chromium(path)
    body = re.search(r"<body[^>]*>", out)
    body = body.group(0) if body else ""
    res = {k: (re.search(f'{k}="([^"]*)"', body) or [None, None])[1]
           for k in ("data-ready", "data-selfcheck", "data-overflow", "data-errors")}
    lines = {k: next((ln for ln in err.splitlines() if f"cnnlab explore: {k}" in ln), None)
             for k in ("script start", "ready")}
    res["script_s"] = (_stamp(lines["ready"]) - _stamp(lines["script start"])
                       if all(lines.values()) else None)
    res["extra_wall_s"] = wall - blank_s
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--rss", action="store_true", help="peak memory of the command only")
    args = ap.parse_args()
    flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    print("CPU flags:", " ".join(f for f in flags if f.startswith("avx")))
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    blank_s = 0.0
    if not args.rss:
        with tempfile.TemporaryDirectory() as tmp:
            blank = Path(tmp) / "blank.html"
            blank.write_text("<html><body>blank</body></html>")
            blank_s = min(_chromium(blank)[2] for _ in range(2))
        print(f"a blank page's headless Chromium run: {blank_s:.2f} s")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            out = Path(tmp) / f"{name}.html"
            start = time.perf_counter()
            p = subprocess.run(["/usr/bin/time", "-f", "maxrss_kb=%M", sys.executable, "-m",
                                "cnnlab", "explore", name, "-o", str(out)],
                               check=True, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
            wall = time.perf_counter() - start
            rss = int(re.search(r"maxrss_kb=(\d+)", p.stderr).group(1))
            line = (f"{name}: {out.stat().st_size / 2**20:.2f} MB page, command {wall:.1f} s, "
                    f"peak RSS {rss / 2**20:.2f} GB")
            if not args.rss:
                r = chromium_ready(out, blank_s)
                script = f"{r['script_s']:.2f} s" if r["script_s"] is not None else "?"
                line += (f"; Chromium: ready={r['data-ready']}, script start to ready {script}, "
                         f"run {r['extra_wall_s']:.1f} s longer than a blank page's, self-check "
                         f"{r['data-selfcheck']}, overflow {r['data-overflow']}, errors "
                         f"{r['data-errors'] or 0}")
            print(f"{line} (load {load()})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
