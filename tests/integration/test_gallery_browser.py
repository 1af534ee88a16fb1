"""The demo's gallery in a real headless browser (Debian's chromium, driven by playwright): every image
loads, every link resolves, no console errors."""

from __future__ import annotations

import functools
import os
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from outpaint.cli import main

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def browser():
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: `make install` installs Debian's chromium"
        if os.environ.get("CI"):
            pytest.fail(message)  # under CI a missing browser is a broken install, never a skip
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


def serve(folder: Path) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def test_every_image_loads_every_link_resolves_and_the_console_stays_clean(browser, tmp_path):
    out = tmp_path / "demo-output"
    assert main(["demo", "--out", str(out), "--task-seconds", "0.2-0.5"]) == 0

    server, url = serve(out)
    try:
        page = browser.new_page()
        errors: list[str] = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("requestfailed", lambda request: errors.append(f"failed: {request.url}"))
        assert page.goto(url + "index.html").ok
        page.wait_for_load_state("load")

        images = page.eval_on_selector_all("img", "els => els.map(e => [e.src, e.complete, e.naturalWidth])")
        assert len(images) >= 10
        assert [src for src, complete, width in images if not complete or width == 0] == []
        links = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
        assert len(links) == 17  # 8 sources and 9 results, each linking to its full size
        for link in links:
            response = page.request.get(link)
            assert response.ok, link
            assert response.headers["content-type"].startswith("image/")
        assert "EMULATED results" in page.inner_text("body")
        # The original's box is drawn on every result, inside it, and smaller than it.
        boxes = page.eval_on_selector_all(
            ".box",
            """els => els.map(e => {
                const b = e.getBoundingClientRect();
                const i = e.parentElement.querySelector('img').getBoundingClientRect();
                return [b.left - i.left, b.top - i.top, i.right - b.right, i.bottom - b.bottom,
                        b.width * b.height, i.width * i.height];
            })""",
        )
        assert len(boxes) == 9
        for *margins, box_area, image_area in boxes:
            assert min(margins) > -1.5  # inside, up to rounding
            assert 0 < box_area < image_area
        assert errors == []
    finally:
        server.shutdown()
