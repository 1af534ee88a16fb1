"""OSS error codes as the service reports them: status, code, default message."""

from __future__ import annotations

_CATALOG: dict[str, tuple[int, str]] = {
    "AccessDenied": (403, "You have no right to access this resource."),
    "BucketAlreadyExists": (409, "The requested bucket name is not available."),
    "BucketNotEmpty": (409, "The bucket you tried to delete is not empty."),
    "EntityTooLarge": (400, "Your proposed upload exceeds the maximum allowed size."),
    "EntityTooSmall": (400, "Your proposed upload is smaller than the minimum allowed size."),
    "FileAlreadyExists": (409, "The object you specified already exists and can not be overwritten."),
    "InternalError": (500, "We encountered an internal error. Please try again."),
    "InvalidAccessKeyId": (403, "The OSS Access Key Id you provided does not exist in our records."),
    "InvalidArgument": (400, "Invalid argument."),
    "InvalidBucketName": (400, "The specified bucket is not valid."),
    "InvalidDigest": (400, "The Content-MD5 you specified is not valid."),
    "InvalidObjectName": (400, "The specified object is not valid."),
    "InvalidPart": (400, "One or more of the specified parts could not be found or did not match."),
    "InvalidPartOrder": (400, "The list of parts was not in ascending order."),
    "InvalidPolicyDocument": (400, "Invalid Policy."),
    "InvalidRange": (416, "The requested range cannot be satisfied."),
    "InvalidSecurityToken": (403, "The security token you provided is invalid."),
    "InvalidTag": (400, "The tag provided was not a valid tag."),
    "MalformedPOSTRequest": (400, "The body of your POST request is not well-formed multipart/form-data."),
    "MalformedXML": (400, "The XML you provided was not well-formed."),
    "MethodNotAllowed": (405, "The specified method is not allowed against this resource."),
    "MissingContentLength": (411, "You must provide the Content-Length HTTP header."),
    "NoSuchBucket": (404, "The specified bucket does not exist."),
    "NoSuchKey": (404, "The specified key does not exist."),
    "NoSuchUpload": (404, "The specified upload does not exist."),
    "NotSymlink": (400, "The specified object is not a symlink."),
    "NotImplemented": (501, "This operation is not emulated."),
    "ObjectNotAppendable": (409, "The object is not appendable."),
    "PositionNotEqualToLength": (409, "Position is not equal to file length."),
    "SymlinkTargetNotExist": (404, "The symlink target object does not exist."),
    "PreconditionFailed": (412, "At least one of the pre-conditions you specified did not hold."),
    "RequestTimeTooSkewed": (
        403,
        "The difference between the request time and the current time is too large.",
    ),
    "SignatureDoesNotMatch": (
        403,
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
    ),
}

# OSS's EC (error detail code, in ``<EC>`` and ``x-oss-ec``) for the errors whose EC is documented or
# shown by the SDKs' own tests; the others carry none rather than an invented one.
_EC = {
    "InvalidAccessKeyId": "0002-00000902",
    "NoSuchBucket": "0015-00000101",
    "NoSuchKey": "0026-00000001",
    "SignatureDoesNotMatch": "0002-00000040",
}
EC_SIGNING_REGION = "0002-00000226"


class OssError(Exception):
    """An error answered to the client as OSS would: status, ``<Code>``, ``<Message>`` and extra elements."""

    def __init__(
        self, code: str, message: str | None = None, *, ec: str | None = None, **details: str
    ) -> None:
        status, default_message = _CATALOG[code]
        self.status = status
        self.code = code
        self.message = message or default_message
        self.ec = ec or _EC.get(code)
        self.details = details
        self.headers: dict[str, str] = {}  # extra response headers (x-oss-next-append-position)
        super().__init__(f"{code}: {self.message}")
