import pytest

from outpaint.dashscope import CODE_KINDS, Kind, classify


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (429, "Throttling.RateQuota", Kind.THROTTLED),
        (429, "Throttling.AllocationQuota", Kind.THROTTLED),
        (429, "SomethingNew", Kind.THROTTLED),
        (429, "PrepaidBillOverdue", Kind.ACCOUNT),
        (401, "InvalidApiKey", Kind.ACCOUNT),
        (403, "AllocationQuota.FreeTierOnly", Kind.ACCOUNT),
        (403, None, Kind.ACCOUNT),
        (400, "InvalidParameter", Kind.PERMANENT),
        (400, "InvalidParameter.ImageFormat", Kind.PERMANENT),
        (400, "InvalidParameter.DataInspection", Kind.PERMANENT),
        (400, "SomethingNew", Kind.PERMANENT),
        (413, "BadRequest.TooLarge", Kind.PERMANENT),
        (400, "InvalidParameter.FileDownload", Kind.TRANSIENT),
        (500, "InternalError.Algo", Kind.TRANSIENT),
        (503, "ModelUnavailable", Kind.TRANSIENT),
        (502, None, Kind.TRANSIENT),
        (408, None, Kind.TRANSIENT),
        # Codes inside a FAILED task come without an HTTP status.
        (None, "InternalError.Algo", Kind.TRANSIENT),
        (None, "InvalidParameter.ImageContent", Kind.PERMANENT),
        (None, None, Kind.TRANSIENT),
    ],
)
def test_classification(status, code, kind):
    assert classify(status, code) is kind


def test_every_documented_throttling_code_keeps_jobs_queued():
    throttling = [code for code in CODE_KINDS if code.startswith("Throttling")]
    assert len(throttling) == 4
    assert all(CODE_KINDS[code] is Kind.THROTTLED for code in throttling)
