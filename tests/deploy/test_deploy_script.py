"""deploy/deploy.sh: fails early and says what is missing; the dry runs print the plans (no cloud calls)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

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


# --- the dry run: the real s CLI renders s.yaml, the script prints the plan, nothing is built ------


def dry_run(
    tools_bin: Path, home: Path, action: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    path = f"{tools_bin}:{os.environ.get('PATH', '')}"
    start = time.monotonic()
    proc = subprocess.run(
        ["bash", str(SCRIPT), action],
        capture_output=True,
        text=True,
        cwd=DEPLOY.parent,
        env={"PATH": path, "HOME": str(home), "NO_COLOR": "1", "DEPLOY_DRY_RUN": "1", **env},
        timeout=120,
        check=False,
    )
    print(f"\nDEPLOY_DRY_RUN=1 deploy.sh {action}: {time.monotonic() - start:.1f} s", file=sys.stderr)
    return proc


@pytest.mark.deploy_tools
def test_dry_run_prints_every_role_function_and_trigger_without_credentials(
    tools_bin: Path, tmp_path: Path, render: Any
) -> None:
    proc = dry_run(tools_bin, tmp_path, "deploy", {})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "placeholders for ALIBABA_CLOUD_ACCESS_KEY_ID" in out
    rendered = render.render_s_yaml({**render.EXAMPLE_ENV, "ALIBABA_CLOUD_ACCOUNT_ID": "YOUR_ACCOUNT_ID"})
    for role in render.roles(rendered).values():
        assert f"role {role['name']} (trusted by {role['service']})" in out
        for statement in role["policies"][0]["statement"]:
            for resource in statement["Resource"]:
                assert f"{', '.join(statement['Action'])} on {resource}" in out
    for props in render.functions(rendered).values():
        name, handler, memory = props["functionName"], props["handler"], props["memorySize"]
        assert f"function {name}: python3.12 {handler}, {memory} MB" in out
        assert f"timeout {props['timeout']} s" in out
        for trigger in props.get("triggers", []):
            assert f"trigger {trigger['triggerName']} ({trigger['triggerType']})" in out
            if trigger["triggerType"] == "oss":
                key = trigger["triggerConfig"]["filter"]["key"]
                where = f"my-outpaint-bucket/{key['prefix']}*{key['suffix']}"
                assert f"{where}, events PutObject, PostObject, CompleteMultipartUpload, role " in out
    assert "reserved concurrency 1, role outpaint-on-tick" in out
    assert "logs: auto: outpaint-logs/fc-functions" in out
    assert "stopping before 's deploy'" in out
    # Nothing was built: the plan comes before the package.
    assert "packages CPython" not in proc.stdout + proc.stderr
    assert "REPLACE_WITH_DASHSCOPE_API_KEY" not in out, "the plan shows no function variables"


@pytest.mark.deploy_tools
def test_dry_run_of_remove_lists_what_the_deploy_created_and_keeps_the_bucket(
    tools_bin: Path, tmp_path: Path, render: Any
) -> None:
    proc = dry_run(tools_bin, tmp_path, "remove", {"OUTPAINT_BUCKET": "team-bucket"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    removed = [line.strip() for line in lines if line.startswith("  ")]
    rendered = render.render_s_yaml({**render.EXAMPLE_ENV, "OUTPAINT_BUCKET": "team-bucket"})
    assert removed == render.removal_plan(rendered)
    assert [line for line in removed if "team-bucket" in line] == [
        "kept: bucket team-bucket and every object in it; the log project (it holds the logs)"
    ]
    assert "placeholders for ALIBABA_CLOUD_ACCESS_KEY_ID" in proc.stdout
    assert "DASHSCOPE_API_KEY" not in proc.stdout, "removing needs no DashScope key"
    assert "stopping before 's remove'" in proc.stdout


# --- what `make remove` removes, from the rendered plan -------------------------------------------


def test_removal_plan_is_every_function_and_role_and_never_the_bucket(render: Any) -> None:
    rendered = render.render_s_yaml(render.EXAMPLE_ENV)
    plan = render.removal_plan(rendered)
    functions, roles = render.functions(rendered), render.roles(rendered)
    assert len(plan) == len(functions) + len(roles) + 1
    for props in functions.values():
        triggers = ", ".join(t["triggerName"] for t in props.get("triggers", [])) or "none"
        assert f"function {props['functionName']} with its triggers ({triggers}) and async config" in plan
    for props in roles.values():
        assert f"role {props['name']} with its policy {props['name']}" in plan
    # Functions go before the roles they run with.
    assert max(i for i, line in enumerate(plan) if line.startswith("function")) < min(
        i for i, line in enumerate(plan) if line.startswith("role")
    )
    assert plan[-1].startswith("kept: bucket my-outpaint-bucket")


@pytest.mark.parametrize("component", ["oss", "devsapp/oss", "fc"])
def test_removal_refuses_a_resource_that_could_touch_the_bucket(render: Any, component: str) -> None:
    rendered = render.render_s_yaml(render.EXAMPLE_ENV)
    rendered["resources"]["bucket"] = {"component": component, "props": {"bucket": "my-outpaint-bucket"}}
    with pytest.raises(render.RenderError, match=f"bucket: component '{component}' is not one"):
        render.removal_plan(rendered)


# --- the real remove path, with a recording `s` (no npm on PATH, so the script takes `s` from PATH) --

S_STUB = """#!/bin/bash
# preview: the real s CLI; any other command: recorded with the variables fc3 would see, never run.
if [[ "$1" == "preview" ]]; then exec "{real_s}" "$@"; fi
echo "$* | FC_GENERATE_PROJECT_NAME=${{FC_GENERATE_PROJECT_NAME:-}}" >> "{log}"
"""


@pytest.mark.deploy_tools
def test_remove_runs_s_remove_after_listing_and_builds_nothing(tools_bin: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "mktemp", "rm", "sed", "env", "node"):
        (bin_dir / tool).symlink_to(shutil.which(tool) or f"/usr/bin/{tool}")
    log = tmp_path / "s-calls.txt"
    stub = bin_dir / "s"
    stub.write_text(S_STUB.format(real_s=tools_bin / "s", log=log), encoding="utf-8")
    stub.chmod(0o755)
    env = {k: v for k, v in REQUIRED.items() if k != "DASHSCOPE_API_KEY"}
    env["HOME"] = str(tmp_path / "home")
    proc = subprocess.run(
        ["bash", str(SCRIPT), "remove"],
        capture_output=True,
        text=True,
        cwd=DEPLOY.parent,
        env={"PATH": str(bin_dir), "NO_COLOR": "1", **env},
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    calls = log.read_text(encoding="utf-8").splitlines()
    assert calls[0].startswith("config add --access outpaint-deploy --AccessKeyID test-id ")
    assert calls[1:] == ["remove -y -t s.yaml -a outpaint-deploy | FC_GENERATE_PROJECT_NAME="]
    assert "role outpaint-on-upload with its policy outpaint-on-upload" in proc.stdout
    assert "bucket test-bucket and its objects are untouched" in proc.stdout
    assert "test-secret" not in proc.stdout + proc.stderr


def test_render_var_prints_one_rendered_value(render: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert render.main(["var", "log_project", "--example"]) == 0
    assert capsys.readouterr().out == "outpaint-logs\n"
    assert render.main(["var", "no_such_var", "--example"]) == 2
    assert "s.yaml has no vars.no_such_var" in capsys.readouterr().err


def test_docs_show_the_current_plans_of_the_default_settings(render: Any) -> None:
    docs = (DEPLOY.parent / "docs" / "deploy.md").read_text(encoding="utf-8")
    # As the dry run prints them: s preview leaves ${config('AccountID')} as is without an access.
    env = {k: v for k, v in render.EXAMPLE_ENV.items() if k != render.ACCOUNT_ID_ENV}
    rendered = render.render_s_yaml(env)
    for line in render.deploy_plan(rendered) + render.removal_plan(rendered):
        assert f"\n  {line}\n" in docs, f"docs/deploy.md lacks the plan line {line!r}"
