"""Temporary file storage: the official SDK's upload helper, oss:// resolution, the header, expiry."""

# Fixtures come in by import (no conftest.py here), so pytest sees them and ruff must not flag them.
# ruff: noqa: F401, F811
from __future__ import annotations

import time

import httpx
import pytest
from dashscope.common.error import UploadFileException
from dashscope.utils.oss_utils import OssUtils
from dashscope_fixtures import (
    KEY,
    download,
    emulator_factory,
    http,
    make_image,
    shared_emulator,
    submit,
    wait,
)

MODEL = "image-out-painting"
RESOLVE = {"X-DashScope-OssResourceResolve": "enable"}


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(make_image(800, 600))
    return path


def sdk_upload(emu, path, api_key: str = KEY) -> str:
    url, _ = OssUtils.upload(model=MODEL, file_path=str(path), api_key=api_key, base_address=emu.base_url)
    return url


def submit_oss(c: httpx.Client, url: str, headers: dict[str, str], **parameters) -> httpx.Response:
    body = {"model": MODEL, "input": {"image_url": url}, "parameters": parameters}
    return c.post("/services/aigc/image2image/out-painting", json=body, headers=headers)


def test_sdk_upload_then_submit_with_the_header_outpaints_the_file(http, photo):
    emu, c = http()
    url = sdk_upload(emu, photo)
    assert url.startswith("oss://dashscope-instant/")
    assert url.endswith("/photo.jpg")
    answer = submit_oss(c, url, RESOLVE, x_scale=2.0)
    assert answer.status_code == 200, answer.text
    done = wait(c, answer.json()["output"]["task_id"])
    assert done["output"]["task_status"] == "SUCCEEDED", done
    assert download(done["output"]["output_image_url"]).size == (1600, 600)


def test_oss_url_without_the_header_is_refused(http, photo):
    emu, c = http()
    answer = submit_oss(c, sdk_upload(emu, photo), {}, x_scale=2.0)
    assert answer.status_code == 400
    assert answer.json()["code"] == "InvalidParameter"
    assert "X-DashScope-OssResourceResolve" in answer.json()["message"]


def test_a_file_of_another_account_is_refused(http, photo):
    emu, c = http(api_keys=[KEY, "sk-other"])
    answer = submit_oss(c, sdk_upload(emu, photo, api_key="sk-other"), RESOLVE, x_scale=2.0)
    assert answer.status_code == 400
    assert "not a temporary file of this account" in answer.json()["message"]


def test_an_expired_file_fails_the_task_as_a_download_error(http, photo):
    emu, c = http(temporary_storage_seconds=0.2)
    url = sdk_upload(emu, photo)
    time.sleep(0.3)
    answer = submit_oss(c, url, RESOLVE, x_scale=2.0)
    assert answer.status_code == 200, answer.text
    done = wait(c, answer.json()["output"]["task_id"])
    assert done["output"]["task_status"] == "FAILED"
    assert done["output"]["code"] == "InvalidParameter.FileDownload"


def test_policy_needs_a_key_and_a_model(http):
    emu, c = http()
    anonymous = httpx.get(f"{emu.base_url}/uploads", params={"action": "getPolicy", "model": MODEL})
    assert anonymous.status_code == 401
    assert c.get("/uploads", params={"action": "getPolicy"}).status_code == 400
    data = c.get("/uploads", params={"action": "getPolicy", "model": MODEL}).json()["data"]
    assert data["upload_dir"].startswith("dashscope-instant/")
    assert data["upload_host"].startswith(emu.origin)


def test_form_upload_checks_signature_key_prefix_and_overwrite(http, photo):
    _emu, c = http()
    data = c.get("/uploads", params={"action": "getPolicy", "model": MODEL}).json()["data"]
    form = {
        "OSSAccessKeyId": data["oss_access_key_id"],
        "Signature": data["signature"],
        "policy": data["policy"],
        "key": data["upload_dir"] + "/a.jpg",
        "x-oss-forbid-overwrite": "true",
        "success_action_status": "200",
    }
    files = {"file": ("a.jpg", photo.read_bytes(), "image/jpeg")}

    def post(**changes: str) -> httpx.Response:
        return httpx.post(data["upload_host"], data={**form, **changes}, files=files, trust_env=False)

    assert post(Signature="AAAA").status_code == 403
    assert post(key="elsewhere/a.jpg").status_code == 403
    assert post().status_code == 200
    overwrite = post()
    assert overwrite.status_code == 409
    assert b"FileAlreadyExists" in overwrite.content


def test_sdk_reports_a_refused_upload(emulator_factory, photo):
    emu = emulator_factory(api_keys=[KEY])
    with pytest.raises(UploadFileException, match="InvalidApiKey"):
        sdk_upload(emu, photo, api_key="sk-wrong")
