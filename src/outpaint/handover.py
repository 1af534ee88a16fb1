"""The input hand-over through DashScope's temporary file storage (``OUTPAINT_INPUT_HANDOVER``).

The default hand-over is a short-lived signed URL of the source object. This one uploads the source
as the official SDK does (``dashscope/utils/oss_utils.py``): ``GET /uploads?action=getPolicy&model=…``,
an OSS form POST of the file to the policy's ``upload_host``, then ``oss://<upload_dir>/<name>``, which
the submit sends with ``X-DashScope-OssResourceResolve: enable``. Nothing of ours must be reachable
from the internet, but the file stays 48 h in DashScope's storage and the service is not meant for
production traffic (reference S13).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from outpaint.dashscope import MODEL, json_body, provider_error
from outpaint.errors import DashScopeError, Kind

if TYPE_CHECKING:
    import httpx

    from outpaint.results import FetchPolicy

POLICY_PATH = "/uploads"


class TemporaryStorage:
    """Uploads input images to DashScope's temporary storage and answers their ``oss://`` URLs."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        hosts: FetchPolicy,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        import httpx

        timeout = httpx.Timeout(hosts.read_timeout_seconds, connect=hosts.connect_timeout_seconds)
        self._hosts = hosts
        self._api = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )
        # A separate client: the API key never travels to the upload host.
        self._upload = httpx.Client(timeout=timeout, transport=transport, follow_redirects=False)

    def close(self) -> None:
        self._api.close()
        self._upload.close()

    def upload(self, name: str, data: bytes, content_type: str) -> str:
        """Upload ``data`` as ``name``; the ``oss://`` URL. DashScopeError (with ``kind``) on failure."""
        import httpx

        try:
            answer = self._api.get(POLICY_PATH, params={"action": "getPolicy", "model": MODEL})
            policy = json_body(answer)
            if answer.status_code != 200 or policy.get("code"):
                raise provider_error(answer.status_code, policy, "upload policy")
            fields = policy.get("data") or {}
            host = str(fields.get("upload_host", ""))
            if not self._hosts.origin_allowed(host):
                raise DashScopeError(
                    "upload host of the policy is not on an allowed origin (allowed_result_hosts)",
                    code="dashscope.upload_host_refused",
                    kind=Kind.ACCOUNT,
                )
            key = f"{fields['upload_dir']}/{name}"
            form = {
                "OSSAccessKeyId": fields["oss_access_key_id"],
                "Signature": fields["signature"],
                "policy": fields["policy"],
                "key": key,
                "x-oss-object-acl": fields["x_oss_object_acl"],
                "x-oss-forbid-overwrite": fields["x_oss_forbid_overwrite"],
                "success_action_status": "200",
                "x-oss-content-type": content_type,
            }
            stored = self._upload.post(host, data=form, files={"file": (name, data, content_type)})
        except KeyError as exc:
            raise DashScopeError(
                f"upload policy lacks {exc}", code="dashscope.malformed_answer", kind=Kind.TRANSIENT
            ) from None
        except httpx.TransportError as exc:
            # Uploading buys nothing: trying again is always safe.
            raise DashScopeError(
                f"temporary storage upload failed: {type(exc).__name__}",
                code="dashscope.upload",
                kind=Kind.TRANSIENT,
            ) from exc
        if stored.status_code not in (200, 204):
            raise DashScopeError(
                f"temporary storage upload answered HTTP {stored.status_code}",
                code="dashscope.upload_refused",
                # An expired policy or a clash (403, 409) passes with a fresh policy; a file the storage
                # will not take (400, 413) will not pass next time either.
                kind=Kind.PERMANENT if stored.status_code in (400, 413) else Kind.TRANSIENT,
                status=stored.status_code,
            )
        return "oss://" + key
