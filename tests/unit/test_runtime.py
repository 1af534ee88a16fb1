import json
from types import SimpleNamespace

import pytest

from outpaint.runtime import Invocation, context_from_headers, invocation_from_context, resolve_handler


def test_python310_context_carries_credentials(monkeypatch):
    monkeypatch.delenv("ALIBABA_CLOUD_ACCESS_KEY_ID", raising=False)
    context = SimpleNamespace(
        request_id="r-1",
        credentials=SimpleNamespace(access_key_id="STS.a", access_key_secret="s", security_token="t"),
        function=SimpleNamespace(name="outpaint-on-tick", timeout=70),
    )
    inv = invocation_from_context(context)
    assert inv.request_id == "r-1"
    assert inv.timeout_seconds == 70
    assert inv.credentials.access_key_id == "STS.a"
    assert inv.credentials.security_token == "t"
    assert "s" not in repr(inv.credentials).split("secret=")[1]


def test_python312_context_reads_credentials_from_environment(monkeypatch):
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "STS.env")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "sec")
    monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", "tok")
    context = SimpleNamespace(request_id="r-2", function=SimpleNamespace(name="f", timeout=60))
    inv = invocation_from_context(context)
    assert inv.credentials.access_key_id == "STS.env"
    assert inv.credentials.security_token == "tok"


def test_deadline_uses_timeout_margin_and_budget():
    inv = Invocation(
        request_id=None, function_name=None, timeout_seconds=120, credentials=None, started_at=1000.0
    )
    assert inv.deadline(8) == 1112.0
    assert inv.deadline(8, budget=55) == 1055.0


def test_headers_become_an_fc_context():
    headers = {
        "x-fc-request-id": "req",
        "x-fc-access-key-id": "ak",
        "x-fc-access-key-secret": "sk",
        "x-fc-function-handler": "handler.on_tick",
        "x-fc-function-timeout": "70",
        "x-fc-function-name": "outpaint-on-tick",
    }
    context = context_from_headers(headers)
    inv = invocation_from_context(context)
    assert (inv.request_id, inv.timeout_seconds, inv.function_name) == ("req", 70, "outpaint-on-tick")
    assert inv.credentials.access_key_id == "ak"


def test_only_the_two_handlers_resolve():
    import handler

    assert resolve_handler("handler.on_upload") is handler.on_upload
    assert resolve_handler("handler.on_tick") is handler.on_tick
    with pytest.raises(LookupError):
        resolve_handler("os.system")


def test_shim_reports_a_malformed_event_without_crashing(monkeypatch):
    """The shim runs the real handler: a malformed OSS event is answered, logged, and not retried."""
    from functions_framework import create_app

    import outpaint.runtime as runtime

    monkeypatch.setenv("OUTPAINT_BUCKET", "b")
    app = create_app(target="fc_invoke", source=runtime.__file__, signature_type="http")
    client = app.test_client()
    response = client.post(
        "/invoke",
        data=b'{"events": [{"eventName": "ObjectCreated:PutObject"}]}',
        headers={
            "x-fc-function-handler": "handler.on_upload",
            "x-fc-request-id": "r",
            "x-fc-control-path": "/invoke",
        },
    )
    assert response.status_code == 200
    body = json.loads(response.data)
    assert body["error"] == "event.malformed"
    assert "events[0]" in body["message"]
    unknown = client.post("/invoke", data=b"{}", headers={"x-fc-function-handler": "nope.x"})
    assert unknown.status_code == 500
    assert unknown.headers["x-fc-status"] == "404"
