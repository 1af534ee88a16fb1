"""RAM roles s.yaml creates (`ram` component): each gets only what its function needs, on its prefixes."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import ROOT

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
# s.yaml `ram` resource id -> what its one policy may grant.
ALLOWED = {
    # on-upload also runs the poller when its lease is free (OUTPAINT_UPLOAD_POLLS), so that results
    # land seconds after the task ends instead of at the next timer tick: it needs the poller's rights.
    # FC invokes its on-failure destination (the dead-letter function) with this role.
    "upload-role": POLLER | {("fc:InvokeFunction", "dead-letter-function")},
    "tick-role": POLLER,
    "dead-letter-role": {("oss:PutObject", "dead-letters"), ("log:PostLogStoreLogs", "logstore")},
    "trigger-role": {("fc:InvokeFunction", "upload-function")},
}
TRUSTED = {
    "upload-role": "fc.aliyuncs.com",
    "tick-role": "fc.aliyuncs.com",
    "dead-letter-role": "fc.aliyuncs.com",
    "trigger-role": "oss.aliyuncs.com",
}


@pytest.fixture(scope="module")
def context(s_yaml: dict[str, Any]) -> dict[str, str]:
    return s_yaml["vars"]


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
        f"acs:fc:{region}:*:services/outpaint-dead-letter/functions/{ctx['dead_letter_function']}",
    ):
        return "dead-letter-function"
    if resource in (
        f"acs:fc:{region}:*:functions/{ctx['upload_function']}",
        f"acs:fc:{region}:*:services/outpaint-upload/functions/{ctx['upload_function']}",
    ):
        return "upload-function"
    raise AssertionError(f"resource {resource!r} is not one of this project's")


def ram_resources(s_yaml: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {rid: r for rid, r in s_yaml["resources"].items() if r["component"] == "ram"}


def test_every_role_s_yaml_creates_is_checked(s_yaml: dict[str, Any]) -> None:
    assert set(ram_resources(s_yaml)) == set(ALLOWED)


@pytest.mark.parametrize("resource_id", sorted(ALLOWED))
def test_policy_grants_exactly_what_the_function_needs(
    resource_id: str, render: Any, s_yaml: dict[str, Any], context: dict[str, str]
) -> None:
    props = ram_resources(s_yaml)[resource_id]["props"]
    # One custom policy given as statements, no managed policy by name (the ram component would attach it).
    assert [type(p) for p in props["policies"]] == [dict]
    assert props["policies"][0]["name"] == props["name"]
    policy = render.role_policy(props)
    assert policy["Version"] == "1"
    granted = set()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        assert set(statement) <= {"Effect", "Action", "Resource", "Condition"}
        for action in statement["Action"]:
            assert "*" not in action, f"wildcard action {action!r}"
            for resource in statement["Resource"]:
                granted.add((action, classify(resource, statement.get("Condition"), context)))
    assert granted == ALLOWED[resource_id]


@pytest.mark.parametrize("resource_id", sorted(TRUSTED))
def test_roles_are_trusted_by_the_right_service_only(resource_id: str, s_yaml: dict[str, Any]) -> None:
    props = ram_resources(s_yaml)[resource_id]["props"]
    # `statement` (a custom trust policy) would replace `service`: the ram component's own trust policy
    # for one service is the narrowest.
    assert "statement" not in props
    assert props["service"] == TRUSTED[resource_id]


def test_no_managed_full_access_policy_in_s_yaml() -> None:
    text = (ROOT / "s.yaml").read_text(encoding="utf-8")
    assert "FullAccess" not in text
    assert "AdministratorAccess" not in text


def test_roles_are_created_before_the_functions_that_use_them(s_yaml: dict[str, Any], render: Any) -> None:
    v = s_yaml["vars"]
    order = list(s_yaml["resources"])
    names = [p["name"] for p in render.roles(s_yaml).values()]
    assert len(set(names)) == len(names) == len(ALLOWED), "one role per function and one for the trigger"
    for resource_id, props in render.functions(s_yaml).items():
        role = render.function_role(s_yaml, resource_id)
        assert props["role"] == f"acs:ram::${{config('AccountID')}}:role/{role['name']}"
        # Serverless Devs deploys resources without dependencies top to bottom.
        role_id = next(rid for rid, p in render.roles(s_yaml).items() if p is role)
        assert order.index(role_id) < order.index(resource_id)
        for trigger in props.get("triggers", []):
            if trigger["triggerType"] == "oss":
                assert (
                    trigger["invocationRole"] == f"acs:ram::${{config('AccountID')}}:role/{v['trigger_role']}"
                )
    assert render.functions(s_yaml)["on-upload"]["functionName"] == v["upload_function"]


def test_template_inlines_the_same_policies(render: Any, template: dict[str, Any]) -> None:
    rendered = render.render_s_yaml(render.EXAMPLE_ENV)
    for resource_id in render.functions(rendered):
        service = template["Resources"][render.service_name(resource_id)]
        role = render.function_role(rendered, resource_id)
        assert service["Properties"]["Policies"] == [render.role_policy(role)]
