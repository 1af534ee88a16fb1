"""Request authentication: OSS V1 and V4 signatures, in headers or presigned URLs, with STS tokens."""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

from .errors import EC_SIGNING_REGION, OssError
from .wire import UNRESERVED, header_text, parse_http_date

MAX_SKEW_SECONDS = 15 * 60
MAX_V4_EXPIRES = 7 * 24 * 3600
V4_ALGORITHM = "OSS4-HMAC-SHA256"

# Query parameters that are part of the V1 canonical resource: the union of what oss2 2.19 and
# alibabacloud-oss-v2 sign. Everything else (prefix, marker, max-keys, ...) is left out.
V1_SUBRESOURCES = frozenset(
    [
        "acl",
        "uploads",
        "location",
        "cors",
        "logging",
        "website",
        "referer",
        "lifecycle",
        "delete",
        "append",
        "position",
        "tagging",
        "objectMeta",
        "uploadId",
        "partNumber",
        "security-token",
        "x-oss-process",
        "x-oss-async-process",
        "symlink",
        "restore",
        "callback",
        "callback-var",
        "qos",
        "qosInfo",
        "live",
        "comp",
        "status",
        "vod",
        "startTime",
        "endTime",
        "stat",
        "bucketInfo",
        "objectInfo",
        "link",
        "group",
        "encryption",
        "versions",
        "versioning",
        "versionId",
        "policy",
        "requestPayment",
        "x-oss-request-payer",
        "x-oss-traffic-limit",
        "sequential",
        "inventory",
        "inventoryId",
        "continuation-token",
        "asyncFetch",
        "worm",
        "wormId",
        "wormExtend",
        "replication",
        "replicationLocation",
        "replicationProgress",
        "transferAcceleration",
        "cname",
        "metaQuery",
        "resourceGroup",
        "style",
        "styleName",
        "regionList",
        "cloudboxes",
        "response-content-type",
        "response-content-language",
        "response-cache-control",
        "response-content-encoding",
        "response-content-disposition",
        "response-expires",
    ]
)


@dataclass(frozen=True)
class Credential:
    access_key_id: str
    access_key_secret: str
    security_token: str | None = None  # set for STS credentials, which are refused without it


@dataclass(frozen=True)
class SignedRequest:
    """What a signature covers, independent of the HTTP framework."""

    method: str
    bucket: str | None
    key: str | None
    query: list[tuple[str, str]]  # percent-decoded, in request order
    headers: Mapping[str, str]  # lower-cased names

    def param(self, name: str) -> str | None:
        return next((value for key, value in self.query if key == name), None)


class Keyring:
    """The access keys the emulator accepts (thread-safe; STS keys can be added while running)."""

    def __init__(self) -> None:
        self._keys: dict[str, Credential] = {}
        self._lock = threading.Lock()

    def add(self, credential: Credential) -> None:
        with self._lock:
            self._keys[credential.access_key_id] = credential

    def get(self, access_key_id: str) -> Credential | None:
        with self._lock:
            return self._keys.get(access_key_id)


class Verifier:
    """Checks a request's signature; returns the access key id, or None for an anonymous request."""

    def __init__(self, keyring: Keyring, region: str, clock: Callable[[], float] = time.time) -> None:
        self.keyring = keyring
        self.region = region
        self.clock = clock

    def verify(self, request: SignedRequest) -> str | None:
        authorization = request.headers.get("authorization", "")
        if authorization.startswith(V4_ALGORITHM + " "):
            return self._v4_header(request, authorization)
        if authorization.startswith("OSS "):
            return self._v1_header(request, authorization)
        if authorization:
            raise OssError(
                "InvalidArgument", "Authorization header is invalid or uses an unsupported scheme."
            )
        version = request.param("x-oss-signature-version")
        if version == V4_ALGORITHM:
            return self._v4_query(request)
        if version is not None:
            raise OssError("InvalidArgument", f"Signature version {version} is not supported.")
        if request.param("Signature") is not None or request.param("OSSAccessKeyId") is not None:
            return self._v1_query(request)
        return None

    # -- V1 --------------------------------------------------------------------------------------

    def _v1_header(self, request: SignedRequest, authorization: str) -> str:
        access_key_id, sep, provided = authorization[4:].strip().rpartition(":")
        if not sep or not access_key_id or not provided:
            raise OssError("InvalidArgument", "Authorization header is invalid.")
        token = request.headers.get("x-oss-security-token") or request.headers.get("security-token")
        credential = self._credential(access_key_id, token)
        date = request.headers.get("x-oss-date") or request.headers.get("date", "")
        signed_at = parse_http_date(date)
        if signed_at is None:
            raise OssError("AccessDenied", "The request must contain a valid Date or x-oss-date header.")
        self._check_skew(signed_at)
        self._check_v1(request, credential, date, provided)
        return access_key_id

    def _v1_query(self, request: SignedRequest) -> str:
        access_key_id = request.param("OSSAccessKeyId") or ""
        expires = request.param("Expires") or ""
        provided = request.param("Signature") or ""
        if not (access_key_id and expires.isdigit() and provided):
            raise OssError("AccessDenied", "OSSAccessKeyId, Expires and Signature are all required.")
        credential = self._credential(access_key_id, request.param("security-token"))
        if self.clock() > int(expires):
            raise OssError("AccessDenied", "Request has expired.", Expires=expires)
        self._check_v1(request, credential, expires, provided)
        return access_key_id

    def _check_v1(self, request: SignedRequest, credential: Credential, date: str, provided: str) -> None:
        string_to_sign = v1_string_to_sign(request, date)
        mac = hmac.new(credential.access_key_secret.encode(), string_to_sign.encode(), hashlib.sha1)
        if not hmac.compare_digest(base64.b64encode(mac.digest()).decode(), provided):
            raise OssError(
                "SignatureDoesNotMatch", StringToSign=string_to_sign, OSSAccessKeyId=credential.access_key_id
            )

    # -- V4 --------------------------------------------------------------------------------------

    def _v4_header(self, request: SignedRequest, authorization: str) -> str:
        fields = {}
        for item in authorization[len(V4_ALGORITHM) + 1 :].split(","):
            name, sep, value = item.strip().partition("=")
            if not sep:
                raise OssError("InvalidArgument", "Authorization header is invalid.")
            fields[name] = value
        if "Credential" not in fields or "Signature" not in fields:
            raise OssError("InvalidArgument", "Authorization header must carry Credential and Signature.")
        stamp = request.headers.get("x-oss-date", "")
        signed_at = _parse_v4_stamp(stamp)
        if signed_at is None:
            raise OssError("AccessDenied", "The request must contain a valid x-oss-date header.")
        access_key_id, scope = self._v4_scope(fields["Credential"], stamp, in_header=True)
        credential = self._credential(access_key_id, request.headers.get("x-oss-security-token"))
        self._check_skew(signed_at)
        additional = [h for h in fields.get("AdditionalHeaders", "").lower().split(";") if h]
        payload = request.headers.get("x-oss-content-sha256", "UNSIGNED-PAYLOAD")
        self._check_v4(
            request,
            credential=credential,
            stamp=stamp,
            scope=scope,
            additional=additional,
            payload=payload,
            provided=fields["Signature"],
            query=request.query,
        )
        return access_key_id

    def _v4_query(self, request: SignedRequest) -> str:
        stamp = request.param("x-oss-date") or ""
        expires = request.param("x-oss-expires") or ""
        provided = request.param("x-oss-signature") or ""
        signed_at = _parse_v4_stamp(stamp)
        if signed_at is None or not expires.isdigit() or not provided:
            raise OssError("AccessDenied", "x-oss-date, x-oss-expires and x-oss-signature are all required.")
        access_key_id, scope = self._v4_scope(request.param("x-oss-credential") or "", stamp)
        credential = self._credential(access_key_id, request.param("x-oss-security-token"))
        if int(expires) > MAX_V4_EXPIRES:
            raise OssError("InvalidArgument", "x-oss-expires must not exceed 604800 seconds.")
        if self.clock() > signed_at + int(expires):
            raise OssError("AccessDenied", "Request has expired.")
        additional = [h for h in (request.param("x-oss-additional-headers") or "").lower().split(";") if h]
        query = [(name, value) for name, value in request.query if name != "x-oss-signature"]
        self._check_v4(
            request,
            credential=credential,
            stamp=stamp,
            scope=scope,
            additional=additional,
            payload="UNSIGNED-PAYLOAD",
            provided=provided,
            query=query,
        )
        return access_key_id

    def _v4_scope(self, credential_field: str, stamp: str, in_header: bool = False) -> tuple[str, str]:
        """Split ``<ak>/<date>/<region>/oss/aliyun_v4_request`` and check it against this emulator."""
        parts = credential_field.rsplit("/", 4)
        if len(parts) != 5 or parts[3] != "oss" or parts[4] != "aliyun_v4_request":
            raise OssError(
                "InvalidArgument", "Credential must be <AccessKeyId>/<date>/<region>/oss/aliyun_v4_request."
            )
        access_key_id, day, region = parts[0], parts[1], parts[2]
        if day != stamp[:8]:
            raise OssError("InvalidArgument", "The date in Credential does not match x-oss-date.")
        if region != self.region:
            # OSS's own wording, which differs between the header and the presigned URL.
            if in_header:
                message, ec = "Invalid signing region in Authorization header.", EC_SIGNING_REGION
            else:
                message, ec = "The signing region in credential is invalid.", None
            raise OssError(
                "InvalidArgument", message, ec=ec, SigningRegion=region, ExpectedRegion=self.region
            )
        return access_key_id, "/".join(parts[1:])

    def _check_v4(
        self,
        request: SignedRequest,
        *,
        credential: Credential,
        stamp: str,
        scope: str,
        additional: list[str],
        payload: str,
        provided: str,
        query: list[tuple[str, str]],
    ) -> None:
        canonical = v4_canonical_request(request, query, additional, payload)
        string_to_sign = "\n".join(
            [V4_ALGORITHM, stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        key = self._v4_signing_key(credential, stamp[:8])
        expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, provided):
            raise OssError(
                "SignatureDoesNotMatch",
                StringToSign=string_to_sign,
                CanonicalRequest=canonical,
                OSSAccessKeyId=credential.access_key_id,
            )

    def _v4_signing_key(self, credential: Credential, day: str) -> bytes:
        key = ("aliyun_v4" + credential.access_key_secret).encode()
        for part in (day, self.region, "oss", "aliyun_v4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        return key

    # -- PostObject ------------------------------------------------------------------------------

    def verify_post_form(self, fields: Mapping[str, str]) -> str | None:
        """Authenticate a PostObject form (lower-cased field names): its signature covers the policy."""
        policy = fields.get("policy", "")
        if fields.get("x-oss-signature-version") == V4_ALGORITHM:
            stamp = fields.get("x-oss-date", "")
            access_key_id, _ = self._v4_scope(fields.get("x-oss-credential", ""), stamp)
            credential = self._credential(access_key_id, fields.get("x-oss-security-token"))
            key = self._v4_signing_key(credential, stamp[:8])
            expected = hmac.new(key, policy.encode(), hashlib.sha256).hexdigest()
            provided = fields.get("x-oss-signature", "")
        elif "ossaccesskeyid" in fields:
            access_key_id = fields["ossaccesskeyid"]
            credential = self._credential(access_key_id, fields.get("x-oss-security-token"))
            mac = hmac.new(credential.access_key_secret.encode(), policy.encode(), hashlib.sha1)
            expected = base64.b64encode(mac.digest()).decode()
            provided = fields.get("signature", "")
        else:
            return None
        if not policy:
            raise OssError("InvalidArgument", "A signed PostObject form needs a policy field.")
        if not hmac.compare_digest(expected, provided):
            raise OssError("SignatureDoesNotMatch", StringToSign=policy, OSSAccessKeyId=access_key_id)
        return access_key_id

    # -- shared ----------------------------------------------------------------------------------

    def _credential(self, access_key_id: str, token: str | None) -> Credential:
        credential = self.keyring.get(access_key_id)
        if credential is None:
            raise OssError("InvalidAccessKeyId", OSSAccessKeyId=access_key_id)
        if (token or None) != credential.security_token:
            raise OssError("InvalidSecurityToken")
        return credential

    def _check_skew(self, signed_at: float) -> None:
        now = self.clock()
        if abs(now - signed_at) > MAX_SKEW_SECONDS:
            raise OssError(
                "RequestTimeTooSkewed",
                RequestTime=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(signed_at)),
                ServerTime=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
                MaxAllowedSkewMilliseconds=str(MAX_SKEW_SECONDS * 1000),
            )


def v1_string_to_sign(request: SignedRequest, date: str) -> str:
    """``VERB, Content-MD5, Content-Type, Date`` lines, then canonical x-oss headers and resource."""
    headers = "".join(f"{name}:{value}\n" for name, value in sorted(_x_oss_headers(request)))
    resource = _path(request)
    subresources = sorted((k, v) for k, v in request.query if k in V1_SUBRESOURCES)
    if subresources:
        resource += "?" + "&".join(f"{k}={v}" if v else k for k, v in subresources)
    return "\n".join(
        [
            request.method,
            request.headers.get("content-md5", ""),
            request.headers.get("content-type", ""),
            date,
            headers + resource,
        ]
    )


def v4_canonical_request(
    request: SignedRequest, query: list[tuple[str, str]], additional: list[str], payload: str
) -> str:
    """``VERB \\n URI \\n query \\n headers \\n additional headers \\n payload hash`` as V4 defines it."""
    encoded = sorted((_v4_encode(k), _v4_encode(v)) for k, v in query)
    canonical_query = "&".join(f"{k}={v}" if v else k for k, v in encoded)
    signed = {"content-type", "content-md5", *additional}
    headers = [(n, v) for n, v in request.headers.items() if n.startswith("x-oss-") or n in signed]
    canonical_headers = "".join(f"{name}:{header_text(value).strip()}\n" for name, value in sorted(headers))
    return "\n".join(
        [
            request.method,
            quote(_path(request), safe="/" + UNRESERVED),
            canonical_query,
            canonical_headers,
            ";".join(sorted(additional)),
            payload,
        ]
    )


def _x_oss_headers(request: SignedRequest) -> list[tuple[str, str]]:
    return [
        (name, header_text(value)) for name, value in request.headers.items() if name.startswith("x-oss-")
    ]


def _path(request: SignedRequest) -> str:
    """The bucket-in-path resource both signature versions use, whatever the addressing style."""
    if request.bucket is None:
        return "/"
    return f"/{request.bucket}/{request.key or ''}"


def _v4_encode(text: str) -> str:
    return quote(text, safe=UNRESERVED)


def _parse_v4_stamp(stamp: str) -> float | None:
    try:
        return calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ"))
    except ValueError:
        return None
