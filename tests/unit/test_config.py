import pytest

from outpaint.config import Settings, load_settings
from outpaint.errors import ConfigError


def test_defaults_and_derived_endpoints():
    s = load_settings(bucket="b", region="cn-hangzhou")
    assert s.internal_endpoint == "https://oss-cn-hangzhou-internal.aliyuncs.com"
    assert s.public_endpoint == "https://oss-cn-hangzhou.aliyuncs.com"
    assert s.submit_qps == 2.0
    assert s.max_concurrent_tasks == 5


def test_environment_names(monkeypatch):
    monkeypatch.setenv("OUTPAINT_BUCKET", "from-env")
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-secret-value")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "ak-from-fc")
    monkeypatch.setenv("OUTPAINT_ALLOWED_RESULT_HOSTS", "http://127.0.0.1:8022, https://*.aliyuncs.com")
    s = Settings()
    assert s.bucket == "from-env"
    assert s.dashscope_api_key.get_secret_value() == "sk-secret-value"
    assert s.access_key_id.get_secret_value() == "ak-from-fc"
    assert s.allowed_result_hosts == ["http://127.0.0.1:8022", "https://*.aliyuncs.com"]
    assert "sk-secret-value" not in repr(s)
    assert "sk-secret-value" not in str(s.model_dump())


def test_every_bad_field_is_reported_at_once(monkeypatch):
    monkeypatch.delenv("OUTPAINT_BUCKET", raising=False)
    with pytest.raises(ConfigError) as info:
        load_settings(submit_qps=0, input_prefix="/inbox", default_gravity="up")
    text = str(info.value)
    for field in ("bucket", "submit_qps", "input_prefix", "default_gravity"):
        assert field in text
    assert "OUTPAINT_SUBMIT_QPS" in text


@pytest.mark.parametrize(
    ("inp", "out", "state"),
    [("", "outpainted/", ".outpaint/"), ("in/", "in/out/", ".s/"), ("a/", "b/", "a/")],
)
def test_overlapping_prefixes_are_refused(inp, out, state):
    with pytest.raises(ConfigError, match="overlap"):
        load_settings(bucket="b", input_prefix=inp, output_prefix=out, state_prefix=state)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://x.oss-cn-beijing.aliyuncs.com/r.png?sig=1", True),
        ("http://x.oss-cn-beijing.aliyuncs.com/r.png", False),
        ("https://x.oss-cn-beijing.aliyuncs.com:8443/r.png", False),
        ("https://aliyuncs.com.evil.example/r.png", False),
        ("https://user@x.aliyuncs.com/r.png", False),
        ("https://169.254.169.254/latest/meta-data", False),
        ("file:///etc/passwd", False),
        ("ftp://x.aliyuncs.com/r.png", False),
    ],
)
def test_result_origin_allowlist(url, allowed):
    s = load_settings(bucket="b")
    assert s.result_origin_allowed(url) is allowed


def test_local_origin_with_port():
    s = load_settings(bucket="b", allowed_result_hosts=["http://127.0.0.1:8022"])
    assert s.result_origin_allowed("http://127.0.0.1:8022/results/t.png")
    assert not s.result_origin_allowed("http://127.0.0.1:8023/results/t.png")
    assert not s.result_origin_allowed("http://localhost:8022/results/t.png")


@pytest.mark.parametrize(
    ("ratio", "words"),
    [("16x9", "expected W:H"), ("99:1", "outside 1:4"), ("16:9,0:1", "positive whole numbers")],
)
def test_a_default_ratio_every_upload_would_fail_on_fails_at_start(monkeypatch, ratio, words):
    monkeypatch.setenv("OUTPAINT_DEFAULT_RATIO", ratio)
    with pytest.raises(ConfigError) as caught:
        load_settings(bucket="b")
    assert "default_ratio (OUTPAINT_DEFAULT_RATIO)" in caught.value.message
    assert words in caught.value.message


def test_good_default_ratios_load(monkeypatch):
    monkeypatch.setenv("OUTPAINT_DEFAULT_RATIO", "16:9, 1:1")
    assert load_settings(bucket="b").default_ratio == "16:9, 1:1"
