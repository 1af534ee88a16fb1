"""Fixtures for the deployment tests: the two templates, the policies, the pinned CLIs, the package."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"

# The environment a deployer would export (values are placeholders; no network is used).
DEPLOY_ENV = {
    "OUTPAINT_BUCKET": "outpaint-test-bucket",
    "DASHSCOPE_API_KEY": "sk-test-not-a-key",
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "package: builds the FC code package (about 15-40 s, pip cache)")
    config.addinivalue_line("markers", "deploy_tools: runs the pinned s / fun CLIs (npm install once)")


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def render() -> ModuleType:
    """deploy/render.py as a module."""
    return _load("outpaint_deploy_render", DEPLOY / "render.py")


@pytest.fixture(scope="session")
def package_module() -> ModuleType:
    """deploy/package.py as a module."""
    return _load("outpaint_deploy_package", DEPLOY / "package.py")


@pytest.fixture(scope="session")
def s_yaml(render: ModuleType) -> dict[str, Any]:
    """s.yaml with vars and env() resolved for DEPLOY_ENV (config('AccountID') left as is)."""
    return render.render_s_yaml(DEPLOY_ENV)


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    """The committed Funcraft template.yaml, parsed."""
    return yaml.safe_load((ROOT / "template.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def template_vars(render: ModuleType) -> dict[str, Any]:
    """s.yaml vars resolved with the values template.yaml was rendered with."""
    return render.render_s_yaml(render.EXAMPLE_ENV)["vars"]


@pytest.fixture(scope="session")
def tools_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """deploy/node/node_modules/.bin after deploy/node/install.sh (npm ci once, then a no-op)."""
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed: cannot install @serverless-devs/s and @alicloud/fun")
    start = time.monotonic()
    proc = subprocess.run(
        [str(DEPLOY / "node" / "install.sh")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, f"deploy/node/install.sh failed:\n{proc.stderr[-3000:]}"
    print(f"\ndeploy/node/install.sh: {time.monotonic() - start:.1f} s", file=sys.stderr)
    return Path(proc.stdout.strip().splitlines()[-1])


def run_tool(
    tool: Path, args: list[str], env: dict[str, str], home: Path
) -> subprocess.CompletedProcess[str]:
    """Run an npm CLI with HOME in a temp dir (both keep state under ~) and only the given env."""
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TMPDIR")}
    return subprocess.run(
        [str(tool), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**base, "HOME": str(home), "NO_COLOR": "1", **env},
        timeout=120,
        check=False,
    )


def parse_preview(stdout: str) -> dict[str, Any]:
    """`s preview -o json` output: a warning line (root user) may come before the JSON."""
    return json.loads(stdout[stdout.index("{") :])
