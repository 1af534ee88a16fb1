"""deploy/deploy.sh fails early and says what is missing (no network, no cloud calls)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from .conftest import DEPLOY

SCRIPT = DEPLOY / "deploy.sh"
REQUIRED = {
    "ALIBABA_CLOUD_ACCESS_KEY_ID": "test-id",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "test-secret",
    "ALIBABA_CLOUD_ACCOUNT_ID": "test-account",
    "OUTPAINT_BUCKET": "test-bucket",
    "DASHSCOPE_API_KEY": "sk-test",
}


def run(env: dict[str, str], path: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT)],
        capture_output=True,
        text=True,
        env={"PATH": path, "HOME": env.pop("HOME", "/nonexistent"), **env},
        timeout=60,
        check=False,
    )


def test_missing_credentials_are_named() -> None:
    env = {
        k: v for k, v in REQUIRED.items() if k not in ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "DASHSCOPE_API_KEY")
    }
    proc = run(env, os.environ.get("PATH", ""))
    assert proc.returncode == 1
    assert "missing environment variable(s): ALIBABA_CLOUD_ACCESS_KEY_SECRET DASHSCOPE_API_KEY" in proc.stderr
    assert "test-secret" not in proc.stderr + proc.stdout


def test_missing_s_tool_is_explained(tmp_path: Path) -> None:
    # A PATH with the few programs the script needs before it looks for npm/s, and neither of those.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname"):
        (bin_dir / tool).symlink_to(shutil.which(tool) or f"/usr/bin/{tool}")
    proc = run(dict(REQUIRED), str(bin_dir))
    assert proc.returncode == 1
    assert "neither npm nor the Serverless Devs CLI 's' was found" in proc.stderr
