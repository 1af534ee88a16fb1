"""Run the oss2 SDK's own core tests against the emulator, V1 and V4, and print the result table.

``.venv/bin/python -m tests.conformance.oss2_suite [--work DIR] [-k EXPR]``

The tests come from the oss2 source distribution of the installed oss2 version (downloaded from PyPI
with pip on first use, kept in ``--work``); they are never committed. Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from importlib.metadata import version
from pathlib import Path

from outpaint.local.oss import OssEmulator

AK, SK, REGION = "oss2-suite-ak", "oss2-suite-sk", "cn-hangzhou"

# The core object-storage tests: objects, listing, iterators, multipart, signed URLs, uploads,
# downloads, non-ASCII keys.
FILES = [
    "test_object.py",
    "test_list_objects_v2.py",
    "test_iterator.py",
    "test_multipart.py",
    "test_sign.py",
    "test_upload.py",
    "test_download.py",
    "test_chinese.py",
]

_NO_RESTORE = "archive storage classes and RestoreObject are not emulated"
_NO_OSS2_SIGNATURE = "signature V2 (OSS2) is not emulated"
_REAL_ENDPOINT = "hard-codes a real OSS endpoint (oss-cn-shanghai.aliyuncs.com)"
_NETWORK_LATENCY = "expects a 1 ms timeout to expire, which needs a network slower than loopback"
_NO_EXAMPLE_JPG = "needs tests/example.jpg, which the oss2 source distribution does not ship"

# Tests left out of the count, with why: they need something outside object storage proper.
EXCLUDED: dict[str, str] = {
    "test_object.py::TestObject::test_restore_object": _NO_RESTORE,
    "test_object.py::TestObject::test_restore_object_with_config": _NO_RESTORE,
    "test_object.py::TestObject::test_restore_object_with_wrong_request": _NO_RESTORE,
    "test_object.py::TestObject::test_restore_archive_object_with_job_parameters": _NO_RESTORE,
    "test_object.py::TestObject::test_list_objects": _NO_RESTORE,
    "test_list_objects_v2.py::TestIteratorV2::test_normal_list_objects_restore_info": _NO_RESTORE,
    "test_object.py::TestObject::test_process_object": _NO_EXAMPLE_JPG,
    "test_object.py::TestObject::test_put_object_with_sign_url": _NO_EXAMPLE_JPG,
    "test_object.py::TestObject::test_async_process_object": "x-oss-async-process is not emulated",
    "test_object.py::TestObject::test_sign_url_with_callback": "upload callbacks are not emulated",
    "test_object.py::TestObject::test_timeout": _NETWORK_LATENCY,
    "test_object.py::TestObject::test_default_timeout": _NETWORK_LATENCY,
    "test_iterator.py::TestIterator::test_live_channel_iterator": "live channels (RTMP) are not emulated",
    "test_multipart.py::TestMultipart::test_multipart_sequential": _REAL_ENDPOINT,
    "test_upload.py::TestUpload::test_upload_sequenial": _REAL_ENDPOINT,
    "test_sign.py::TestSign::test_sign_v4_additional_headers": (
        "sends a GET declaring Content-Length: 9 without a body on a kept-alive connection; the"
        " emulator's HTTP server (uvicorn) then reads the next request as that body"
    ),
    "test_sign.py::TestSign::test_sign_v2_additional_headers": _NO_OSS2_SIGNATURE,
    "test_sign.py::TestSign::test_sign_v2_x_oss_date": _NO_OSS2_SIGNATURE,
    "test_sign.py::TestSign::test_sign_v2_x_oss_date_url": _NO_OSS2_SIGNATURE,
}


def fetch_tests(work: Path) -> Path:
    """The extracted oss2 sdist matching the installed oss2 (downloaded once)."""
    wanted = version("oss2")
    root = work / f"oss2-{wanted}"
    if not (root / "tests" / "common.py").exists():
        work.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                *(sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:", "--no-deps"),
                *("--dest", str(work), f"oss2=={wanted}"),
            ],
            check=True,
        )
        with tarfile.open(work / f"oss2-{wanted}.tar.gz") as archive:
            archive.extractall(work, filter="data")
    # The tests import the "mock" backport; the standard library's unittest.mock is the same API.
    (root / "mock.py").write_text("from unittest.mock import *  # noqa: F403\n")
    return root


def run(root: Path, auth_version: str, report: Path, select: str | None) -> None:
    """One pass of the selected files against a fresh emulator, signing with ``auth_version``."""
    with (
        tempfile.TemporaryDirectory() as data,
        OssEmulator(
            data_dir=Path(data), access_key_id=AK, access_key_secret=SK, region=REGION, port=0
        ) as emu,
    ):
        env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]),
            OSS_TEST_ACCESS_KEY_ID=AK,
            OSS_TEST_ACCESS_KEY_SECRET=SK,
            OSS_TEST_ENDPOINT=emu.endpoint,
            OSS_TEST_REGION=REGION,
            OSS_TEST_AUTH_VERSION=auth_version,
        )
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "oss2_suite_plugin"]
        command += ["--timeout=120"]
        command += ["--junitxml", str(report), *(["-k", select] if select else [])]
        command += [f"tests/{name}" for name in FILES]
        subprocess.run(command, cwd=root, env=env, stdout=subprocess.DEVNULL, check=False)


def outcomes(report: Path) -> dict[str, str]:
    """``file::Class::test`` -> passed / failed / skipped, from a junit report.

    A test whose set-up or tear-down errs has a second entry; any failing entry makes it failed."""
    results: dict[str, str] = {}
    for case in ET.parse(report).iter("testcase"):
        module = case.get("classname", "").rsplit(".", 1)
        test_id = f"{module[0].rsplit('.', 1)[-1]}.py::{module[-1]}::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            results[test_id] = "failed"
        elif results.get(test_id) != "failed":
            results[test_id] = "skipped" if case.find("skipped") is not None else "passed"
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path(".outpaint-local/oss2-suite"))
    parser.add_argument("-k", dest="select", help="pytest -k expression (a subset, for debugging)")
    parser.add_argument("--versions", nargs="+", default=["v1", "v4"], choices=["v1", "v4"])
    args = parser.parse_args()
    root = fetch_tests(args.work.resolve())
    table = {}
    for auth_version in args.versions:
        report = args.work.resolve() / f"report-{auth_version}.xml"
        run(root, auth_version, report, args.select)
        table[auth_version] = outcomes(report)
    print(f"| file | counted | V1 passed | V4 passed |  (oss2 {version('oss2')})")
    print("|---|---|---|---|")
    totals = [0, 0, 0]
    for name in FILES:
        ids = [t for t in table[args.versions[0]] if t.startswith(name + "::") and t not in EXCLUDED]
        passed = [sum(table.get(v, {}).get(t) == "passed" for t in ids) for v in ("v1", "v4")]
        print(f"| {name} | {len(ids)} | {passed[0]} | {passed[1]} |")
        totals = [totals[0] + len(ids), totals[1] + passed[0], totals[2] + passed[1]]
    count, v1, v4 = totals
    share = [f"{n} ({100 * n / max(count, 1):.0f} %)" for n in (v1, v4)]
    print(f"| **total** | {count} | {share[0]} | {share[1]} |")
    for auth_version in args.versions:
        for test_id, outcome in sorted(table[auth_version].items()):
            if outcome != "passed" and test_id not in EXCLUDED:
                print(f"{auth_version} {outcome}: {test_id}")
    for test_id, reason in EXCLUDED.items():
        seen = ", ".join(f"{v} {table[v].get(test_id, 'not run')}" for v in args.versions)
        print(f"not counted ({seen}): {test_id}: {reason}")


if __name__ == "__main__":
    main()
