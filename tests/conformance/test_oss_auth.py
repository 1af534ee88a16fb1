"""Authentication: V1/V4 headers and presigned URLs, STS tokens, expiry, skew and wrong keys."""

# Fixtures come in by import (no conftest.py here), so pytest sees them and ruff must not flag them.
# ruff: noqa: F401, F811
from __future__ import annotations

import time
from datetime import timedelta
from email.utils import formatdate

import alibabacloud_oss_v2 as oss
import httpx
import oss2
import pytest
from oss_fixtures import (
    AK,
    BUCKET,
    REGION,
    SK,
    STS,
    bucket,
    client,
    emulator,
    raw_v1_request,
    start_emulator,
    v1_bucket,
    v2_client,
    v4_bucket,
)


def server_error(call) -> oss2.exceptions.OssError:
    with pytest.raises(oss2.exceptions.OssError) as info:
        call()
    return info.value


@pytest.mark.parametrize("key", ["dir/a b+c.jpg", "数据/x?.png"])
def test_presigned_get_and_put_with_plain_http(bucket, key):
    put_url = bucket.sign_url("PUT", key, 60, headers={"Content-Type": "image/jpeg"})
    assert (
        httpx.put(put_url, content=b"signed body", headers={"Content-Type": "image/jpeg"}).status_code == 200
    )
    get_url = bucket.sign_url("GET", key, 60, slash_safe=True)
    response = httpx.get(get_url)
    assert (response.status_code, response.content) == (200, b"signed body")
    assert response.headers["Content-Type"] == "image/jpeg"


def test_presigned_url_signed_for_another_content_type_is_refused(bucket):
    url = bucket.sign_url("PUT", "k", 60, headers={"Content-Type": "image/jpeg"})
    response = httpx.put(url, content=b"x", headers={"Content-Type": "text/plain"})
    assert response.status_code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in response.text


def test_sdk_v2_presign(emulator, client):
    client.put_object(oss.PutObjectRequest(bucket=BUCKET, key="p/q r.txt", body=b"v2"))
    presigned = client.presign(
        oss.GetObjectRequest(bucket=BUCKET, key="p/q r.txt"), expires=timedelta(seconds=60)
    )
    assert httpx.get(presigned.url).content == b"v2"
    put = client.presign(oss.PutObjectRequest(bucket=BUCKET, key="p/new"), expires=timedelta(seconds=60))
    assert httpx.put(put.url, content=b"by url").status_code == 200
    assert v1_bucket(emulator).get_object("p/new").read() == b"by url"


def test_expired_presigned_urls_are_refused(emulator):
    v1_url = v1_bucket(emulator).sign_url("GET", "k", 1)
    v4_url = v4_bucket(emulator).sign_url("GET", "k", 1)
    time.sleep(2.1)
    for url in (v1_url, v4_url):
        response = httpx.get(url)
        assert response.status_code == 403
        assert "<Code>AccessDenied</Code>" in response.text
        assert "expired" in response.text


@pytest.mark.parametrize("auth", [oss2.Auth(AK, "wrong"), oss2.AuthV4(AK, "wrong")], ids=["v1", "v4"])
def test_wrong_secret_gives_signature_mismatch_with_string_to_sign(emulator, auth):
    bucket = oss2.Bucket(auth, emulator.endpoint, BUCKET, region=REGION)
    error = server_error(lambda: bucket.put_object("k", b"x"))
    assert (error.status, error.code) == (403, "SignatureDoesNotMatch")
    assert (
        f"/{BUCKET}/k" in error.details["StringToSign"] or "OSS4-HMAC-SHA256" in error.details["StringToSign"]
    )
    assert not v1_bucket(emulator).object_exists("k")


def test_wrong_secret_with_sdk_v2(emulator):
    with pytest.raises(oss.exceptions.OperationError) as info:
        v2_client(emulator, secret="wrong").put_object(
            oss.PutObjectRequest(bucket=BUCKET, key="k", body=b"x")
        )
    assert "SignatureDoesNotMatch" in str(info.value)


def test_unknown_access_key(emulator):
    bucket = oss2.Bucket(oss2.Auth("nobody", SK), emulator.endpoint, BUCKET)
    error = server_error(lambda: bucket.get_object("k"))
    assert (error.status, error.code) == (403, "InvalidAccessKeyId")


def test_sts_credentials(emulator):
    key_id, secret, token = STS
    for auth, region in [
        (oss2.StsAuth(key_id, secret, token), None),
        (oss2.ProviderAuthV4(oss2.credentials.StaticCredentialsProvider(key_id, secret, token)), REGION),
    ]:
        bucket = oss2.Bucket(auth, emulator.endpoint, BUCKET, region=region)
        bucket.put_object("sts.txt", b"via sts")
        assert httpx.get(bucket.sign_url("GET", "sts.txt", 60)).content == b"via sts"
    v2 = v2_client(emulator, secret=secret, token=token, key_id=key_id)
    assert v2.get_object(oss.GetObjectRequest(bucket=BUCKET, key="sts.txt")).body.read() == b"via sts"
    for wrong in (oss2.StsAuth(key_id, secret, "other-token"), oss2.Auth(key_id, secret)):
        error = server_error(
            lambda wrong=wrong: oss2.Bucket(wrong, emulator.endpoint, BUCKET).get_object("sts.txt")
        )
        assert (error.status, error.code) == (403, "InvalidSecurityToken")


def test_sts_credentials_added_while_running(emulator):
    emulator.add_sts_credentials("STS.late", "late-secret", "late-token")
    bucket = oss2.Bucket(oss2.StsAuth("STS.late", "late-secret", "late-token"), emulator.endpoint, BUCKET)
    assert bucket.put_object("late", b"1").status == 200


def test_anonymous_requests_are_refused(emulator):
    for method, path in [
        ("GET", f"/{BUCKET}/k"),
        ("PUT", f"/{BUCKET}/k"),
        ("GET", f"/{BUCKET}/"),
        ("GET", "/"),
    ]:
        response = httpx.request(method, emulator.endpoint + path, content=b"x" if method == "PUT" else None)
        assert response.status_code == 403, (method, path)
        assert "<Code>AccessDenied</Code>" in response.text


def test_public_read_bucket(tmp_path):
    emu = start_emulator(tmp_path, public_read=["open-bucket"])
    try:
        bucket = v1_bucket(emu, "open-bucket")
        bucket.put_object("pub/a.txt", b"public")
        assert httpx.get(f"{emu.endpoint}/open-bucket/pub%2Fa.txt").content == b"public"
        assert httpx.head(f"{emu.endpoint}/open-bucket/pub/a.txt").status_code == 200
        assert httpx.get(f"{emu.endpoint}/open-bucket/?prefix=pub/").status_code == 200
        assert httpx.put(f"{emu.endpoint}/open-bucket/b.txt", content=b"x").status_code == 403
        assert httpx.get(f"{emu.endpoint}/{BUCKET}/x").status_code == 403
    finally:
        emu.stop()


def test_clock_skew(emulator):
    stale = formatdate(time.time() - 16 * 60, usegmt=True)
    response = raw_v1_request(emulator, "GET", f"/{BUCKET}/k", date=stale)
    assert response.status_code == 403
    assert "<Code>RequestTimeTooSkewed</Code>" in response.text
    fresh = raw_v1_request(
        emulator, "GET", f"/{BUCKET}/k", date=formatdate(time.time() - 14 * 60, usegmt=True)
    )
    assert "<Code>NoSuchKey</Code>" in fresh.text  # within 15 minutes: authenticated, object missing
    undated = httpx.get(f"{emulator.endpoint}/{BUCKET}/k", headers={"Authorization": f"OSS {AK}:abc"})
    assert undated.status_code == 403


def test_v4_signing_region_must_match(emulator):
    bucket = oss2.Bucket(oss2.AuthV4(AK, SK), emulator.endpoint, BUCKET, region="cn-shanghai")
    error = server_error(lambda: bucket.get_object("k"))
    assert (error.status, error.code) == (400, "InvalidArgument")
    assert error.message == "Invalid signing region in Authorization header."  # OSS's own words
    assert error.ec == "0002-00000226"
    assert (error.details["SigningRegion"], error.details["ExpectedRegion"]) == ("cn-shanghai", REGION)
    head = server_error(lambda: bucket.head_object("k"))  # HEAD: the EC comes in the header
    assert head.headers["x-oss-ec"] == "0002-00000226"


def test_malformed_authorization(emulator):
    response = httpx.get(f"{emulator.endpoint}/{BUCKET}/k", headers={"Authorization": "Bearer nonsense"})
    assert response.status_code == 400
    assert "<Code>InvalidArgument</Code>" in response.text


def test_auth_can_be_switched_off(tmp_path):
    emu = start_emulator(tmp_path, auth=False)
    try:
        assert httpx.put(f"{emu.endpoint}/{BUCKET}/open", content=b"free").status_code == 200
        assert httpx.get(f"{emu.endpoint}/{BUCKET}/open").content == b"free"
    finally:
        emu.stop()
