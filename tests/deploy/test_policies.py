"""RAM policies: each function gets only the OSS actions it needs, on its bucket and prefixes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .conftest import DEPLOY, DEPLOY_ENV

# What each function may do, per resource pattern (after the placeholders are filled in).
POLLER = {
    ("oss:GetObject", "input"),  # HEAD before submit (source unchanged?) and the signed input URL
    ("oss:GetObject", "state"),
    ("oss:PutObject", "state"),
    ("oss:DeleteObject", "state"),  # state markers move; old lease terms are removed
    ("oss:PutObject", "output"),
    ("oss:GetObject", "output"),  # HEAD: was this output already written by this job?
    ("oss:ListObjects", "bucket?state"),
    ("log:PostLogStoreLogs", "logstore"),
}
ALLOWED = {
    # on-upload also runs the poller when its lease is free (OUTPAINT_UPLOAD_POLLS), so that results
    # land seconds after the task ends instead of at the next timer tick: it needs the poller's rights.
    "on-upload": POLLER | {("fc:InvokeFunction", "dead-letter-function")},  # its on-failure destination
    "on-tick": POLLER,
    "dead-letter": {("oss:PutObject", "dead-letters"), ("log:PostLogStoreLogs", "logstore")},
    "oss-trigger-invoke": {
        ("fc:InvokeFunction", "upload-function"),
    },
}


@pytest.fixture(scope="module")
def context(render: Any, s_yaml: dict[str, Any]) -> dict[str, str]:
    return render.policy_context(s_yaml)


def classify(resource: str, condition: dict[str, Any] | None, ctx: dict[str, str]) -> str:
    """Name the resource pattern of one statement resource, or fail on anything broader."""
    assert resource != "*", "unscoped resource"
    assert not resource.endswith(":*"), f"unscoped resource {resource!r}"
    bucket = f"acs:oss:*:*:{ctx['bucket']}"
    if resource == f"{bucket}/{ctx['state_prefix']}dead-letters/*":
        assert condition is None
        return "dead-letters"
    for name in ("input", "output", "state"):
        if resource == f"{bucket}/{ctx[name + '_prefix']}*":
            assert condition is None
            return name
    if resource == bucket:
        # Bucket-level (ListObjects) only with a prefix condition on the state prefix.
        assert condition == {"StringLike": {"oss:Prefix": [ctx["state_prefix"] + "*"]}}, condition
        return "bucket?state"
    region = ctx["region"]
    if resource == f"acs:log:{region}:*:project/{ctx['log_project']}/logstore/{ctx['log_store']}":
        return "logstore"
    if resource in (
        f"acs:fc:{region}:*:functions/{ctx['dead_letter_function']}",
        f"acs:fc:{region}:*:services/{ctx['dead_letter_service']}/functions/{ctx['dead_letter_function']}",
    ):
        return "dead-letter-function"
    if resource in (
        f"acs:fc:{region}:*:functions/{ctx['upload_function']}",
        f"acs:fc:{region}:*:services/{ctx['upload_service']}/functions/{ctx['upload_function']}",
    ):
        return "upload-function"
    raise AssertionError(f"resource {resource!r} is not one of this project's")


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_policy_grants_exactly_what_the_function_needs(
    name: str, render: Any, context: dict[str, str]
) -> None:
    policy = render.render_policy(name, context)
    assert policy["Version"] == "1"
    granted = set()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        assert set(statement) <= {"Effect", "Action", "Resource", "Condition"}
        for action in statement["Action"]:
            assert "*" not in action, f"wildcard action {action!r}"
            for resource in statement["Resource"]:
                granted.add((action, classify(resource, statement.get("Condition"), context)))
    assert granted == ALLOWED[name]


def test_no_policy_file_mentions_full_access_or_wildcards() -> None:
    for path in sorted((DEPLOY / "policies").glob("*.json")):
        text = path.read_text(encoding="utf-8")
        assert "FullAccess" not in text, path.name
        assert '"oss:*"' not in text, path.name
        assert '"*"' not in text, path.name
        json.loads(text)  # placeholders are inside strings: the templates are valid JSON as they are


def test_trust_policies_name_the_right_service() -> None:
    for name, service in (("fc-trust", "fc.aliyuncs.com"), ("oss-trust", "oss.aliyuncs.com")):
        (statement,) = json.loads((DEPLOY / "policies" / f"{name}.json").read_text())["Statement"]
        assert statement["Action"] == "sts:AssumeRole"
        assert statement["Principal"] == {"Service": [service]}


def test_roles_in_s_yaml_are_the_ones_the_policies_are_for(s_yaml: dict[str, Any], render: Any) -> None:
    v = s_yaml["vars"]
    upload, tick, dead = (s_yaml["resources"][r]["props"] for r in ("on-upload", "on-tick", "dead-letter"))
    assert upload["role"] == f"acs:ram::${{config('AccountID')}}:role/{v['upload_role']}"
    assert tick["role"] == f"acs:ram::${{config('AccountID')}}:role/{v['tick_role']}"
    assert dead["role"] == f"acs:ram::${{config('AccountID')}}:role/{v['dead_letter_role']}"
    roles = (v["upload_role"], v["tick_role"], v["dead_letter_role"], v["trigger_role"])
    assert len(set(roles)) == 4, "one role per function"
    for trigger in upload["triggers"]:
        assert trigger["invocationRole"] == f"acs:ram::${{config('AccountID')}}:role/{v['trigger_role']}"
    commands = "\n".join(render.role_commands(DEPLOY_ENV))
    for role in roles:
        assert f"CreateRole --RoleName {role} " in commands
        assert f"AttachPolicyToRole --PolicyType Custom --PolicyName {role} --RoleName {role}" in commands
    assert "AliyunOSSFullAccess" not in commands


def test_template_inlines_the_same_policies(render: Any, template: dict[str, Any]) -> None:
    ctx = render.policy_context(render.render_s_yaml(render.EXAMPLE_ENV))
    for resource_id in ("on-upload", "on-tick", "dead-letter"):
        service = template["Resources"][render.service_name(resource_id)]
        assert service["Properties"]["Policies"] == [render.render_policy(resource_id, ctx)]
