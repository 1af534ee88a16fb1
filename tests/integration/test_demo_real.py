"""`outpaint demo --dashscope real` with the DashScope emulator standing in for the real service (same wire
flow, base URL switched): the bill, the --yes guard, the cap, and a run through the temporary storage."""

from __future__ import annotations

import httpx
import pytest
from PIL import Image

from outpaint.cli import main
from outpaint.local.dashscope import DashScopeEmulator
from outpaint.submit import TEMPORARY_STORAGE

KEY = "sk-stand-in-for-the-real-service"


@pytest.fixture
def stand_in(monkeypatch):
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    with DashScopeEmulator(api_keys=[KEY], task_seconds=(0.2, 0.6), seed=0, qps=100.0) as emu:
        yield emu


def real(emu: DashScopeEmulator, out, *extra: str) -> list[str]:
    return ["demo", "--dashscope", "real", "--dashscope-url", emu.base_url, "--out", str(out), *extra]


def uploads(emu: DashScopeEmulator) -> list[dict]:
    return httpx.get(f"{emu.origin}/_emulator/uploads", trust_env=False).json()["uploads"]


def test_without_yes_nothing_is_bought_and_the_bill_is_shown_with_exit_2(stand_in, tmp_path, capsys):
    assert main(real(stand_in, tmp_path / "out", "--price", "0.2")) == 2

    text = capsys.readouterr()
    # 8 scenes: 6 with one variant, one with three, one refused by the plan (buys nothing).
    assert "bill: 8 image(s) -> 9 task(s) x 0.20 CNY = 1.80 CNY" in text.out
    assert "pass --yes" in text.err
    assert KEY not in text.out + text.err
    assert stand_in.stats()["submits_accepted"] == 0
    assert uploads(stand_in) == []
    assert not (tmp_path / "out").exists()


def test_yes_runs_end_to_end_through_the_temporary_storage(stand_in, tmp_path, capsys):
    out = tmp_path / "out"
    flags = ("--yes", "--limit", "2", "--env", f"OUTPAINT_ALLOWED_RESULT_HOSTS={stand_in.origin}")

    assert main(real(stand_in, out, *flags)) == 0, capsys.readouterr()

    text = capsys.readouterr().out
    assert "bill: 2 image(s) -> 2 task(s) x 0.18 CNY = 0.36 CNY" in text
    assert "demo OK" in text
    assert KEY not in text + (out / "stack.log").read_text()
    assert stand_in.stats()["submits_accepted"] == 2
    stored = uploads(stand_in)
    assert len(stored) == 2
    assert all(u["key"].startswith("dashscope-instant/") for u in stored)
    page = (out / "index.html").read_text()
    assert "real DashScope image-out-painting" in page
    assert "0.18 CNY" in page
    assert TEMPORARY_STORAGE not in page
    assert len(list((out / "results").iterdir())) == 2


def test_upload_and_result_hosts_are_held_to_the_allow_list(stand_in, tmp_path, capsys):
    # Uploads go to 127.0.0.1 (allowed), results come from localhost (not allowed): refused, not fetched.
    port = stand_in.origin.rsplit(":", 1)[1]
    stand_in.configure(result_origin=f"http://localhost:{port}")
    flags = (
        "--yes",
        "--limit",
        "1",
        "--timeout",
        "20",
        "--env",
        f"OUTPAINT_ALLOWED_RESULT_HOSTS={stand_in.origin}",
    )

    assert main(real(stand_in, tmp_path / "out", *flags)) == 1

    assert "result.refused" in capsys.readouterr().out
    log = (tmp_path / "out" / "stack.log").read_text()
    assert "code=result.refused" in log
    assert stand_in.stats()["result_downloads"] == 0


def test_an_upload_host_off_the_allow_list_gets_nothing(stand_in, tmp_path):
    # The production allow-list (https://*.aliyuncs.com) admits neither its upload host nor its results.
    assert main(real(stand_in, tmp_path / "out", "--yes", "--limit", "1", "--timeout", "8")) == 1

    assert "code=dashscope.upload_host_refused" in (tmp_path / "out" / "stack.log").read_text()
    assert uploads(stand_in) == []
    assert stand_in.stats()["submits_accepted"] == 0


def test_more_images_than_the_cap_are_refused_before_anything_is_sent(stand_in, tmp_path, capsys):
    images = tmp_path / "mine"
    images.mkdir()
    for i in range(11):
        Image.new("RGB", (600, 600), (i * 20, 90, 160)).save(images / f"{i:02}.jpg")

    assert main(real(stand_in, tmp_path / "out", "--images", str(images), "--yes")) == 2

    assert "at most 10" in capsys.readouterr().err
    assert stand_in.stats()["submits_accepted"] == 0
