"""Shared helpers for the DashScope emulator conformance tests: real images on a loopback server."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from PIL import Image, ImageDraw

from outpaint.local.dashscope import DashScopeEmulator, Settings

KEY = "sk-local"
SUBMIT_PATH = "/services/aigc/image2image/out-painting"
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"}
DEFAULTS = {name: value for name, value in vars(Settings()).items() if name != "seed"}


def make_image(width: int = 1000, height: int = 1000, fmt: str = "JPEG", mode: str = "RGB") -> bytes:
    """A deterministic test picture (gradient, disc, stripes) encoded by Pillow."""
    image = Image.linear_gradient("L").resize((width, height)).convert(mode)
    draw = ImageDraw.Draw(image)
    draw.ellipse((width // 4, height // 4, 3 * width // 4, 3 * height // 4), fill="red")
    for x in range(0, width, 97):
        draw.line((x, 0, x, height), fill="blue", width=3)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buffer.getvalue()


class ImageServer:
    """``http.server`` on 127.0.0.1 serving registered bodies; unknown paths answer 404."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[int, bytes, str]] = {}
        files = self.files

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body, kind = files.get(self.path, (404, b"not found", "text/plain"))
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def add(self, path: str, body: bytes, status: int = 200, kind: str = "application/octet-stream") -> str:
        """Serve ``body`` at ``path``; returns its URL."""
        self.files[path] = (status, body, kind)
        return self.url(path)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"


@pytest.fixture(scope="session")
def images() -> Iterator[ImageServer]:
    server = ImageServer()
    server.thread.start()
    server.add("/square.jpg", make_image())
    yield server
    server.server.shutdown()


FAST = {"api_keys": [KEY], "task_seconds": (0.05, 0.1), "seed": 0, "qps": 1000.0, "query_qps": 1000.0}


@pytest.fixture(scope="session")
def shared_emulator() -> Iterator[DashScopeEmulator]:
    """One server for the whole session (a restart costs ~0.2 s); tests reset and configure it."""
    with DashScopeEmulator(**FAST) as emu:
        yield emu


@pytest.fixture
def emulator_factory(shared_emulator: DashScopeEmulator) -> Callable[..., DashScopeEmulator]:
    """Reset the shared emulator to fast defaults (sub-second tasks, generous quotas) plus ``knobs``."""

    def configure(**knobs: Any) -> DashScopeEmulator:
        shared_emulator.reset()
        shared_emulator.configure(**{**DEFAULTS, **FAST, **knobs})
        shared_emulator.reset()  # restart the draws under the new settings
        return shared_emulator

    return configure


@pytest.fixture
def emulator(emulator_factory: Callable[..., DashScopeEmulator]) -> DashScopeEmulator:
    return emulator_factory()


@pytest.fixture
def client(emulator: DashScopeEmulator) -> Iterator[httpx.Client]:
    """Raw HTTP against the emulator, with the API key and async header set."""
    headers = {"Authorization": f"Bearer {KEY}", "X-DashScope-Async": "enable"}
    with httpx.Client(base_url=emulator.base_url, headers=headers, trust_env=False, timeout=10) as http:
        yield http


@pytest.fixture
def http(emulator_factory: Callable[..., DashScopeEmulator]) -> Iterator[Callable[..., Any]]:
    """Build an emulator with ``knobs`` and a raw httpx client for it."""
    clients = []

    def make(**knobs: Any) -> tuple[DashScopeEmulator, httpx.Client]:
        emu = emulator_factory(**knobs)
        headers = {"Authorization": f"Bearer {KEY}", "X-DashScope-Async": "enable"}
        clients.append(httpx.Client(base_url=emu.base_url, headers=headers, trust_env=False, timeout=10))
        return emu, clients[-1]

    yield make
    for c in clients:
        c.close()


def submit(http: httpx.Client, image_url: str, **parameters: Any) -> httpx.Response:
    """Raw create-task call."""
    body = {"model": "image-out-painting", "input": {"image_url": image_url}, "parameters": parameters}
    return http.post(SUBMIT_PATH, json=body)


def wait(http: httpx.Client, task_id: str, timeout: float = 15.0) -> dict[str, Any]:
    """Poll a task until it reaches a terminal status; returns the whole query answer."""
    deadline = time.monotonic() + timeout
    while True:
        body = http.get(f"/tasks/{task_id}").json()
        if body["output"]["task_status"] in TERMINAL or time.monotonic() > deadline:
            return body
        time.sleep(0.02)


def run_task(http: httpx.Client, image_url: str, **parameters: Any) -> dict[str, Any]:
    """Submit, expect acceptance, and wait for the end."""
    response = submit(http, image_url, **parameters)
    assert response.status_code == 200, response.text
    return wait(http, response.json()["output"]["task_id"])


def download(url: str) -> Image.Image:
    """Fetch a result URL and decode it."""
    response = httpx.get(url, trust_env=False, timeout=10)
    assert response.status_code == 200, response.text
    return Image.open(io.BytesIO(response.content))
