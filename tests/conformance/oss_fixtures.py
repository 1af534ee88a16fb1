"""Shared fixtures for the OSS emulator conformance tests: a real emulator on 127.0.0.1 and real SDKs."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import alibabacloud_oss_v2 as oss
import httpx
import oss2
import pytest

from outpaint.local.oss import OssEmulator

AK = "conformance-ak"
SK = "conformance-sk"
REGION = "cn-hangzhou"
BUCKET = "conformance"
STS = ("STS.conformance", "sts-secret", "sts-token-value")
ODD_KEYS = [
    "plain.txt",
    "dir/sub/file.bin",
    "with space.jpg",
    "a+b=c&d.png",
    "100%/done?.txt",
    "unicode/数据/ñandú ✓.txt",
    "trailing/",
    "semi;colon,comma#hash~tilde'quote\".txt",
]


def start_emulator(data_dir: Path, **kwargs: object) -> OssEmulator:
    options: dict[str, object] = {
        "buckets": [BUCKET],
        "access_key_id": AK,
        "access_key_secret": SK,
        "region": REGION,
        "sts_credentials": [STS],
    }
    options.update(kwargs)
    return OssEmulator(data_dir=data_dir, **options).start()  # type: ignore[arg-type]


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[OssEmulator]:
    emu = start_emulator(tmp_path / "oss")
    yield emu
    emu.stop()


def v1_bucket(emu: OssEmulator, name: str = BUCKET) -> oss2.Bucket:
    return oss2.Bucket(oss2.Auth(AK, SK), emu.endpoint, name)


def v4_bucket(emu: OssEmulator, name: str = BUCKET) -> oss2.Bucket:
    return oss2.Bucket(oss2.AuthV4(AK, SK), emu.endpoint, name, region=REGION)


@pytest.fixture(params=["v1", "v4"])
def bucket(request: pytest.FixtureRequest, emulator: OssEmulator) -> oss2.Bucket:
    """An oss2 Bucket signing with V1 or V4 (each test runs with both)."""
    return v1_bucket(emulator) if request.param == "v1" else v4_bucket(emulator)


def v2_client(emu: OssEmulator, secret: str = SK, token: str | None = None, key_id: str = AK) -> oss.Client:
    cfg = oss.config.load_default()
    cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(key_id, secret, token)
    cfg.region = REGION
    cfg.endpoint = emu.endpoint
    cfg.retry_max_attempts = 1
    return oss.Client(cfg)


@pytest.fixture
def client(emulator: OssEmulator) -> oss.Client:
    """An alibabacloud-oss-v2 client (V4 signatures)."""
    return v2_client(emulator)


def raw_v1_request(
    emu: OssEmulator, method: str, path: str, *, date: str | None = None, secret: str = SK, body: bytes = b""
) -> httpx.Response:
    """A hand-signed V1 request (for what SDKs will not send, such as a skewed clock)."""
    date = date or formatdate(usegmt=True)
    bucket, _, key = path.lstrip("/").partition("/")
    string_to_sign = f"{method}\n\n\n{date}\n/{bucket}/{key}"
    signature = base64.b64encode(
        hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha1).digest()
    ).decode()
    headers = {"Date": date, "Authorization": f"OSS {AK}:{signature}"}
    return httpx.request(method, emu.endpoint + path, headers=headers, content=body)
