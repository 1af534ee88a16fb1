"""Security by default: short-lived path-safe input URLs, results only from allowed origins, emulator
signature checks on, and no secret in any log line (the suite-wide guard in tests/conftest.py)."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpx
import oss2
import pytest

from outpaint.config import load_settings
from outpaint.errors import ResultRefused
from outpaint.job import State
from outpaint.oss import Storage
from outpaint.results import ResultFetcher
from tests.support.images import photo
from tests.support.stack import API_KEY, BUCKET, running_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("sec"), task_seconds=(0.1, 0.1)) as stack:
        yield stack


def test_signed_input_urls_expire_as_configured(stack):
    stack.bucket().put_object("inbox/secret.jpg", photo())
    settings = stack.settings(signed_url_seconds=60)
    storage = Storage(settings, stack.credentials)
    url = storage.sign_get_url("inbox/secret.jpg", settings.signed_url_seconds)
    assert parse_qs(urlsplit(url).query)["x-oss-expires"] == ["60"]
    assert urlsplit(url).path == f"/{BUCKET}/inbox/secret.jpg"  # slash-safe
    assert httpx.get(url).status_code == 200
    short = storage.sign_get_url("inbox/secret.jpg", 1)
    time.sleep(2.1)
    assert httpx.get(short).status_code == 403


def test_dot_segments_are_signed_so_no_fetcher_can_normalise_them(stack):
    key = "inbox/a/../b.jpg"
    stack.bucket().put_object(key, photo())
    url = Storage(stack.settings(), stack.credentials).sign_get_url(key, 60)
    assert "/../" not in url
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.content == stack.bucket().get_object(key).read()


class _Redirect(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(302)
        self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def redirecting_origin():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Redirect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.2:{port}/r.jpg",  # another host
        "http://127.0.0.1:1/r.jpg",  # another port
        "http://169.254.169.254/latest/meta-data/",  # the instance metadata service
        "file:///etc/passwd",
        "ftp://127.0.0.1:{port}/r.jpg",
        "http://user@127.0.0.1:{port}/r.jpg",
    ],
)
def test_results_from_anywhere_else_are_refused_before_any_request(url, redirecting_origin):
    port = urlsplit(redirecting_origin).port
    settings = load_settings(bucket=BUCKET, allowed_result_hosts=[redirecting_origin])
    calls = []
    fetcher = ResultFetcher(settings.fetch_policy(), transport=httpx.MockTransport(calls.append))
    with pytest.raises(ResultRefused):
        fetcher.fetch(url.format(port=port))
    assert calls == []


def test_redirects_from_an_allowed_origin_are_not_followed(redirecting_origin):
    settings = load_settings(bucket=BUCKET, allowed_result_hosts=[redirecting_origin])
    with pytest.raises(ResultRefused, match="redirect"):
        ResultFetcher(settings.fetch_policy()).fetch(redirecting_origin + "/result.jpg")


def test_emulator_signature_checks_are_on(stack):
    stack.bucket().put_object("inbox/private.jpg", b"x")
    assert httpx.get(f"{stack.oss.endpoint}/{BUCKET}/inbox/private.jpg").status_code == 403
    wrong = oss2.Bucket(oss2.Auth("LTAI-test-key", "wrong-secret"), stack.oss.endpoint, BUCKET)
    with pytest.raises(oss2.exceptions.OssError) as info:
        wrong.get_object("inbox/private.jpg")
    assert info.value.status == 403
    submit = httpx.post(
        stack.dashscope.base_url + "/services/aigc/image2image/out-painting",
        json={
            "model": "image-out-painting",
            "input": {"image_url": "http://127.0.0.1/x.jpg"},
            "parameters": {},
        },
        headers={"X-DashScope-Async": "enable", "Authorization": "Bearer sk-wrong"},
    )
    assert submit.status_code == 401


def test_a_full_run_logs_identifiers_but_no_secret(stack, logs_hold_no_secrets, capfd):
    stack.on_upload(stack.upload("inbox/logged.jpg", photo(), ratio="16:9"))
    job = stack.pipeline().store.load(stack.pipeline().store.job_ids_for_source("inbox/logged.jpg")[0])
    assert job.state is State.DONE
    lines = logs_hold_no_secrets.lines
    assert any(job.job_id in line and "job.done" in line for line in lines)
    assert any(job.tasks[-1].task_id in line for line in lines)
    out, err = capfd.readouterr()
    for text in (out, err):
        assert API_KEY not in text
        assert "Signature=" not in text
        assert "x-oss-signature=" not in text.lower()
    assert "x-oss-signature" not in job.model_dump_json().lower()
