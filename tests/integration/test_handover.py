"""outpaint.handover against the DashScope emulator: an upload the client then submits, and what each
failure of the temporary-storage hand-over means for the job (its ``kind``)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from outpaint.dashscope import DashScopeClient
from outpaint.errors import DashScopeError, Kind
from outpaint.handover import TemporaryStorage
from outpaint.local.dashscope import DashScopeEmulator
from outpaint.results import FetchPolicy

KEY = "sk-handover"


@pytest.fixture(scope="module")
def emu():
    with DashScopeEmulator(api_keys=[KEY], task_seconds=0.1, seed=0, qps=100.0) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (600, 600), (10, 120, 90)).save(buffer, "JPEG")
    return buffer.getvalue()


def storage(emu: DashScopeEmulator, key: str = KEY, *origins: str) -> TemporaryStorage:
    return TemporaryStorage(emu.base_url, key, FetchPolicy(origins or (emu.origin,), 1024 * 1024, 5.0, 5.0))


def test_the_oss_url_of_an_upload_is_accepted_by_a_submit(emu, jpeg):
    url = storage(emu).upload("job.jpg", jpeg, "image/jpeg")

    assert url.startswith("oss://dashscope-instant/")
    assert url.endswith("/job.jpg")
    assert DashScopeClient(emu.base_url, KEY).submit(url, {"x_scale": 1.5}).task_id


def test_a_refused_key_is_an_account_problem(emu, jpeg):
    with pytest.raises(DashScopeError) as caught:
        storage(emu, "sk-wrong").upload("job.jpg", jpeg, "image/jpeg")

    assert caught.value.code == "InvalidApiKey"
    assert caught.value.kind is Kind.ACCOUNT


def test_an_upload_host_off_the_allow_list_gets_nothing(emu, jpeg):
    with pytest.raises(DashScopeError) as caught:
        storage(emu, KEY, "https://*.aliyuncs.com").upload("job.jpg", jpeg, "image/jpeg")

    assert caught.value.code == "dashscope.upload_host_refused"


def test_an_unreachable_service_is_transient(jpeg):
    closed = TemporaryStorage(
        "http://127.0.0.1:9/api/v1", KEY, FetchPolicy(("http://127.0.0.1:9",), 1024, 1, 1)
    )
    with pytest.raises(DashScopeError) as caught:
        closed.upload("job.jpg", jpeg, "image/jpeg")

    assert caught.value.code == "dashscope.upload"
    assert caught.value.kind is Kind.TRANSIENT
