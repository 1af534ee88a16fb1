"""The real CLIs, offline: `s preview -o json` renders s.yaml, `fun validate` accepts template.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import DEPLOY_ENV, ROOT, parse_preview, run_tool

pytestmark = pytest.mark.deploy_tools


def test_s_preview_renders_what_the_tests_read(
    tools_bin: Path, tmp_path: Path, s_yaml: dict[str, Any]
) -> None:
    proc = run_tool(tools_bin / "s", ["preview", "-t", "s.yaml", "-o", "json"], DEPLOY_ENV, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    preview = parse_preview(proc.stdout)
    # The tests' own resolver (deploy/render.py) and Serverless Devs agree on every value.
    assert preview["resources"] == s_yaml["resources"]
    assert preview["vars"] == s_yaml["vars"]


def test_s_preview_refuses_a_missing_secret(tools_bin: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in DEPLOY_ENV.items() if k != "DASHSCOPE_API_KEY"}
    proc = run_tool(tools_bin / "s", ["preview", "-t", "s.yaml", "-o", "json"], env, tmp_path)
    assert proc.returncode != 0
    assert "env('DASHSCOPE_API_KEY') not found" in proc.stdout + proc.stderr


def test_fun_validate_accepts_template_yaml(tools_bin: Path, tmp_path: Path) -> None:
    proc = run_tool(tools_bin / "fun", ["validate", "-t", "template.yaml"], {}, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ERR" not in proc.stdout + proc.stderr


def test_fun_validate_is_not_a_rubber_stamp(tools_bin: Path, tmp_path: Path) -> None:
    """Control: the same template with a runtime Funcraft does not know must fail."""
    tpl = yaml.safe_load((ROOT / "template.yaml").read_text(encoding="utf-8"))
    service = next(iter(tpl["Resources"].values()))
    function = next(
        v for v in service.values() if isinstance(v, dict) and "Properties" in v and "Events" in v
    )
    function["Properties"]["Runtime"] = "python3.12"
    bad = tmp_path / "template.yaml"
    bad.write_text(yaml.safe_dump(tpl, sort_keys=False), encoding="utf-8")
    proc = run_tool(tools_bin / "fun", ["validate", "-t", str(bad)], {}, tmp_path)
    assert proc.returncode != 0
    assert "Runtime" in proc.stdout + proc.stderr
