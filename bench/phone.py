"""The grid worker's phone: what /grid weighs, and how long an outbox takes to drain.

`python -m bench.phone [--reports N]` starts a real `cmdcenter serve` (SQLite) and the system's
headless Chromium at 360×640 (a phone), signs a grid worker in and measures:

- page weight of /grid, by CDP `encodedDataLength` (bytes on the wire, compressed as the server
  sends them) summed over the page's requests until the page is ready and connected: on a first
  load (nothing cached) and on a repeat visit (the service worker installed). The same two loads
  are also counted at a TCP proxy in front of the server (everything on the wire: the service
  worker's own fetches, the websocket). Targets: ≤ 600 KB first, ≤ 50 KB repeat;
- draining an outbox: N reports (default 50) are made offline through the 上报 form, each with
  one 1600×1200 JPEG photo of about 400 KB after the phone's resizing; then the link comes back
  as an emulated 750 kbit/s, 300 ms one (CDP network emulation, both directions) and the time
  until every report and photo is stored is measured, with the bytes that went up and the share
  of the link's capacity that used.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.server import ROOT, BenchServer

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--no-first-run"]
GRID = "DEMO-T01-G01"
PASSWORD = "bench-password"
LINK_BPS = 750_000 / 8  # bytes per second
LINK_LATENCY_MS = 300
TARGET_FIRST_KB = 600
TARGET_REPEAT_KB = 50
FIELD = "window.cmdcenterField"


def photo(seed: int) -> bytes:
    """A 1600×1200 JPEG with a photo's texture (smooth shapes and fine grain), ~400 KB."""
    from PIL import Image, ImageFilter

    rng = random.Random(seed)
    small = Image.frombytes("RGB", (64, 48), rng.randbytes(64 * 48 * 3))
    image = small.resize((1600, 1200), Image.BICUBIC).filter(ImageFilter.GaussianBlur(6))
    grain = Image.frombytes("L", (1600, 1200), rng.randbytes(1600 * 1200)).point(
        lambda v: 128 + (v - 128) // 9)
    image = Image.blend(image, Image.merge("RGB", (grain, grain, grain)), 0.35)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=92)
    return out.getvalue()


def add_worker(server: BenchServer, name: str) -> None:
    subprocess.run([sys.executable, "-m", "command.cli", "users", "add", name, "--role", "grid",
                    "--unit", GRID, "--password-stdin", "--data-dir", str(server.data_dir)],
                   input=PASSWORD + "\n", capture_output=True, text=True, env=server.env,
                   cwd=ROOT, timeout=120, check=True)


class Wire:
    """Sum CDP encodedDataLength of a page's requests."""

    def __init__(self, cdp) -> None:
        self.total = 0
        self.requests = 0
        cdp.on("Network.loadingFinished", self._finished)
        cdp.send("Network.enable")

    def _finished(self, event) -> None:
        self.total += int(event.get("encodedDataLength") or 0)
        self.requests += 1

    def reset(self) -> None:
        self.total, self.requests = 0, 0


def _ready(page, *, online: bool = True) -> None:
    page.wait_for_function(f"{FIELD} && {FIELD}.ready()", timeout=60_000)
    if online:
        page.wait_for_function(f"{FIELD}.connected()", timeout=60_000)


def _outbox(page) -> list[dict]:
    return page.evaluate(f"{FIELD}.outbox()")


def run(reports: int = 50) -> dict:
    from playwright.sync_api import sync_playwright

    from tests.proxy import Proxy

    tmp = Path(tempfile.mkdtemp(prefix="cmdcenter-bench-phone-"))
    server = BenchServer(tmp / "data", {"CMDCENTER_RATE_PER_SECOND": "1000000",
                                        "CMDCENTER_RATE_BURST": "1000000"}).start()
    proxy = Proxy(server.port).start()
    counted = {"up": 0, "down": 0}
    proxy.count = counted  # the proxy adds what it forwards (see tests/proxy.py)
    result: dict = {}
    try:
        add_worker(server, "bench-grid")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            context = browser.new_context(viewport={"width": 360, "height": 640},
                                          is_mobile=True, has_touch=True, locale="zh-CN",
                                          timezone_id="Asia/Shanghai", device_scale_factor=2)
            page = context.new_page()
            cdp = context.new_cdp_session(page)
            wire = Wire(cdp)
            page.goto(proxy.url + "/login")
            page.fill("input[name=name]", "bench-grid")
            page.fill("input[name=password]", PASSWORD)
            # the sign-in answer redirects to /grid: count from the form's post on
            page.wait_for_load_state("networkidle")
            wire.reset()
            counted.update(up=0, down=0)
            page.click("button[type=submit]")
            page.wait_for_url("**/grid")
            _ready(page)
            page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=60_000)
            page.wait_for_load_state("networkidle")
            page.wait_for_timeout(1500)  # the service worker's install fetches, settled
            result["first_kb"] = wire.total / 1000
            result["first_requests"] = wire.requests
            result["first_wire_kb"] = (counted["up"] + counted["down"]) / 1000

            wire.reset()
            counted.update(up=0, down=0)
            page.goto(proxy.url + "/grid")
            _ready(page)
            page.wait_for_load_state("networkidle")
            page.wait_for_timeout(1500)
            result["repeat_kb"] = wire.total / 1000
            result["repeat_requests"] = wire.requests
            result["repeat_wire_kb"] = (counted["up"] + counted["down"]) / 1000

            # the outbox: N reports with a photo each, made with no network
            cdp.send("Network.emulateNetworkConditions", {
                "offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
            for k in range(reports):
                page.click("[data-tab=report]")
                page.fill("#grid-report input[name=title]", f"巡查发现 {k + 1:02d}：道路积水")
                page.set_input_files("#grid-report input[type=file]", [{
                    "name": f"p{k}.jpg", "mimeType": "image/jpeg",
                    "buffer": photo(k)}])
                page.wait_for_function(
                    "document.querySelectorAll('#grid-report .ph-photo').length === 1",
                    timeout=30_000)
                page.click("#grid-report button[type=submit]")
                deadline = time.monotonic() + 30
                while len(_outbox(page)) < k + 1 and time.monotonic() < deadline:
                    page.wait_for_timeout(50)
            box = _outbox(page)
            assert len(box) == reports, len(box)
            sizes = page.evaluate(
                """() => new Promise(done => {
                     const r = indexedDB.open('cmdcenter-phone');
                     r.onsuccess = () => { const t = r.result.transaction('blobs').objectStore('blobs').getAll();
                                           t.onsuccess = () => done(t.result.map(b => b.blob.size)); }; })""")
            result["photo_kb"] = sum(sizes) / len(sizes) / 1000
            result["photos_mb"] = sum(sizes) / 1e6

            cdp.send("Network.emulateNetworkConditions", {
                "offline": False, "latency": LINK_LATENCY_MS,
                "downloadThroughput": LINK_BPS, "uploadThroughput": LINK_BPS})
            counted.update(up=0, down=0)
            started = time.monotonic()
            page.evaluate("window.dispatchEvent(new Event('online'))")
            while True:
                box = _outbox(page)
                if all(e["state"] == "delivered" and all(p["state"] == "done" for p in e["photos"])
                       for e in box):
                    break
                if time.monotonic() - started > 3600:
                    raise TimeoutError("the outbox did not drain in an hour")
                page.wait_for_timeout(250)
            seconds = time.monotonic() - started
            result["reports"] = reports
            result["drain_s"] = seconds
            result["up_mb"] = counted["up"] / 1e6
            result["link_floor_s"] = counted["up"] / LINK_BPS
            result["use"] = counted["up"] / LINK_BPS / seconds
            browser.close()
    finally:
        proxy.stop()
        server.stop()
    return result


def rows(r: dict) -> list[tuple[str, str, str, bool]]:
    return [
        ("/grid first load (KB, CDP encodedDataLength)",
         f"{r['first_kb']:.0f}  [{r['first_requests']} requests; {r['first_wire_kb']:.0f} KB on "
         "the wire incl. service worker and websocket]", f"≤ {TARGET_FIRST_KB}",
         r["first_kb"] <= TARGET_FIRST_KB),
        ("/grid repeat visit, service worker installed (KB)",
         f"{r['repeat_kb']:.1f}  [{r['repeat_requests']} requests; {r['repeat_wire_kb']:.0f} KB "
         "on the wire]", f"≤ {TARGET_REPEAT_KB}", r["repeat_kb"] <= TARGET_REPEAT_KB),
        (f"drain {r['reports']} reports × 1 photo ({r['photo_kb']:.0f} KB) at 750 kbit/s, "
         "300 ms (s)",
         f"{r['drain_s']:.0f}  [{r['up_mb']:.1f} MB up; the link's floor {r['link_floor_s']:.0f} s;"
         f" {r['use'] * 100:.0f}% of its capacity used]", "—", True),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.phone", description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=50)
    args = parser.parse_args(argv)
    if not os.path.exists(CHROMIUM):
        print(f"bench.phone: {CHROMIUM} is missing (apt-get install chromium)", file=sys.stderr)
        return 2
    print(f"bench.phone: /grid page weight, then draining {args.reports} reports with photos "
          "over 750 kbit/s, 300 ms …", flush=True)
    r = run(args.reports)
    for label, value, target, ok in rows(r):
        print(f"  {label}: {value}  (target {target}){'' if ok else '  ← MISSED'}")
    return 0 if all(row[3] for row in rows(r)) else 1


if __name__ == "__main__":
    sys.exit(main())
