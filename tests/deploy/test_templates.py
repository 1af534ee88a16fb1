"""s.yaml (fc3) and template.yaml (Funcraft): safe triggers, real handlers, valid settings, one truth."""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
from itertools import combinations
from typing import Any

import pytest
from pydantic import AliasChoices

from outpaint.config import ENV_PREFIX, Settings

from .conftest import DEPLOY_ENV, ROOT

THE_THREE_EVENTS = [
    "oss:ObjectCreated:PutObject",
    "oss:ObjectCreated:PostObject",
    "oss:ObjectCreated:CompleteMultipartUpload",
]
MAX_NATIVE_OSS_TRIGGERS_PER_BUCKET = 10
TIMER_INTERVAL_SECONDS = 60
EVERY_MINUTE = {"0 * * * * *", "@every 1m"}


def props(s_yaml: dict[str, Any], resource_id: str) -> dict[str, Any]:
    return s_yaml["resources"][resource_id]["props"]


def funcraft_functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """function name -> function resource, across the template's services."""
    found = {}
    for service in template["Resources"].values():
        assert service["Type"] == "Aliyun::Serverless::Service"
        for key, value in service.items():
            if isinstance(value, dict) and value.get("Type") == "Aliyun::Serverless::Function":
                found[key] = value
    return found


def fc3_resources(s_yaml: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {rid: r for rid, r in s_yaml["resources"].items() if r["component"] == "fc3"}


def oss_triggers(s_yaml: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        t
        for res in fc3_resources(s_yaml).values()
        for t in res["props"].get("triggers", [])
        if t["triggerType"] == "oss"
    ]


# --- bucket layout --------------------------------------------------------------------------------


def test_prefixes_are_disjoint_and_accepted_by_settings(s_yaml: dict[str, Any]) -> None:
    v = s_yaml["vars"]
    prefixes = [v["input_prefix"], v["output_prefix"], v["state_prefix"]]
    for a, b in combinations(prefixes, 2):
        assert not a.startswith(b)
        assert not b.startswith(a), f"{a!r} and {b!r} overlap"
    assert all(p and p.endswith("/") and not p.startswith("/") for p in prefixes)
    # The same values pass the Settings validator (which also checks disjointness).
    Settings(bucket="b", input_prefix=prefixes[0], output_prefix=prefixes[1], state_prefix=prefixes[2])


@pytest.mark.parametrize("which", ["s.yaml", "template.yaml"])
def test_oss_triggers_cannot_fire_on_outputs_or_state(
    which: str, s_yaml: dict[str, Any], template: dict[str, Any], template_vars: dict[str, Any]
) -> None:
    if which == "s.yaml":
        v = s_yaml["vars"]
        filters = [t["triggerConfig"]["filter"]["key"]["prefix"] for t in oss_triggers(s_yaml)]
    else:
        v = template_vars
        filters = [
            e["Properties"]["Filter"]["Key"]["Prefix"]
            for f in funcraft_functions(template).values()
            for e in f.get("Events", {}).values()
            if e["Type"] == "OSS"
        ]
    assert filters, "no OSS trigger"
    for prefix in filters:
        assert prefix == v["input_prefix"]
        # A trigger prefix matches every key that starts with it: an empty prefix would match all.
        assert prefix != ""
        for written in (v["output_prefix"], v["state_prefix"]):
            assert not written.startswith(prefix), f"writes under {written!r} would fire {prefix!r}"
            assert not prefix.startswith(written)


def test_oss_trigger_events_are_exactly_the_three(s_yaml: dict[str, Any], template: dict[str, Any]) -> None:
    for trigger in oss_triggers(s_yaml):
        assert trigger["triggerConfig"]["events"] == THE_THREE_EVENTS, trigger["triggerName"]
    for function in funcraft_functions(template).values():
        for name, event in function.get("Events", {}).items():
            if event["Type"] == "OSS":
                assert event["Properties"]["Events"] == THE_THREE_EVENTS, name


def test_one_oss_trigger_takes_every_key_under_the_input_prefix(s_yaml: dict[str, Any]) -> None:
    # Images are recognised from their bytes, so no suffix filter: `.PNG`, `.Jpg` and keys without an
    # extension all reach on_upload, and one trigger leaves the bucket 9 of its 10 native triggers.
    (trigger,) = oss_triggers(s_yaml)
    assert trigger["triggerConfig"]["filter"]["key"] == {
        "prefix": s_yaml["vars"]["input_prefix"],
        "suffix": "",
    }
    assert len(oss_triggers(s_yaml)) <= MAX_NATIVE_OSS_TRIGGERS_PER_BUCKET
    assert trigger["sourceArn"] == (
        f"acs:oss:{s_yaml['vars']['region']}:${{config('AccountID')}}:{DEPLOY_ENV['OUTPAINT_BUCKET']}"
    )
    assert trigger in props(s_yaml, "on-upload")["triggers"]


def test_timer_fires_every_minute_with_a_json_payload(s_yaml: dict[str, Any]) -> None:
    (timer,) = props(s_yaml, "on-tick")["triggers"]
    assert timer["triggerType"] == "timer"
    assert timer["triggerConfig"]["cronExpression"] in EVERY_MINUTE
    assert timer["triggerConfig"]["enable"] is True
    assert isinstance(json.loads(timer["triggerConfig"]["payload"]), dict)
    assert not props(s_yaml, "on-upload").get("triggers") or all(
        t["triggerType"] == "oss" for t in props(s_yaml, "on-upload")["triggers"]
    )


# --- functions ------------------------------------------------------------------------------------


def test_resource_ids_and_runtime(s_yaml: dict[str, Any]) -> None:
    assert set(fc3_resources(s_yaml)) == {"on-upload", "on-tick", "dead-letter"}
    assert {r["component"] for r in s_yaml["resources"].values()} == {"fc3", "ram"}
    for resource in fc3_resources(s_yaml).values():
        assert resource["props"]["runtime"] == "python3.12"
        assert resource["props"]["code"] == "./build/outpaint-fc.zip"
        assert resource["props"]["memorySize"] % 64 == 0


def test_poller_is_a_singleton_whose_timeout_covers_its_budget(s_yaml: dict[str, Any]) -> None:
    tick, upload = props(s_yaml, "on-tick"), props(s_yaml, "on-upload")
    env = tick["environmentVariables"]
    budget = float(env["OUTPAINT_TICK_BUDGET_SECONDS"])
    margin = float(env["OUTPAINT_TICK_SAFETY_MARGIN_SECONDS"])
    assert tick["timeout"] > budget + margin
    assert budget < TIMER_INTERVAL_SECONDS, "a tick must end before the next timer event"
    assert tick["concurrencyConfig"] == {"reservedConcurrency": 1}
    assert tick["instanceConcurrency"] == 1
    # Retrying a tick only queues it behind the running one; stale tick events are dropped.
    assert tick["asyncInvokeConfig"]["maxAsyncRetryAttempts"] == 0
    assert tick["asyncInvokeConfig"]["maxAsyncEventAgeInSeconds"] <= TIMER_INTERVAL_SECONDS
    # The upload function may follow its tasks as the poller: it leaves itself the same margin.
    assert upload["timeout"] > margin + 30
    assert upload["environmentVariables"]["OUTPAINT_TICK_SAFETY_MARGIN_SECONDS"] == str(int(margin))
    assert 1 <= upload["asyncInvokeConfig"]["maxAsyncRetryAttempts"] <= 8
    failure = upload["asyncInvokeConfig"]["destinationConfig"]["onFailure"]["destination"]
    dead_letter = props(s_yaml, "dead-letter")
    assert failure == (
        f"acs:fc:{s_yaml['vars']['region']}:${{config('AccountID')}}:functions/{dead_letter['functionName']}"
    )
    assert "destinationConfig" not in dead_letter["asyncInvokeConfig"], "a dead letter of dead letters"
    for p in (tick, upload, dead_letter):
        # fc3 creates the log store (get-or-create) with the names deploy/deploy.sh passes it.
        assert p["logConfig"] == "auto"


def test_handler_names_resolve_to_callables(s_yaml: dict[str, Any], template: dict[str, Any]) -> None:
    names = set()
    for p in (props(s_yaml, r) for r in fc3_resources(s_yaml)):
        names.add(p["handler"])
        if "instanceLifecycleConfig" in p:
            names.add(p["instanceLifecycleConfig"]["initializer"]["handler"])
    for function in funcraft_functions(template).values():
        names.add(function["Properties"]["Handler"])
        names.add(function["Properties"].get("Initializer", "handler.initialize"))
    assert {"handler.on_upload", "handler.on_tick", "handler.on_dead_letter", "handler.initialize"} == names
    sys.path.insert(0, str(ROOT))
    try:
        for name in sorted(names):
            module_name, attr = name.rsplit(".", 1)
            module = importlib.import_module(module_name)
            assert module.__file__ == str(ROOT / "handler.py")
            assert callable(getattr(module, attr)), name
    finally:
        sys.path.remove(str(ROOT))


# --- environment ----------------------------------------------------------------------------------


def settings_env_names() -> dict[str, str]:
    """Every environment name Settings reads -> field name."""
    names = {}
    for field_name, info in Settings.model_fields.items():
        names[ENV_PREFIX + field_name.upper()] = field_name
        if isinstance(info.validation_alias, AliasChoices):
            for choice in info.validation_alias.choices:
                names[str(choice)] = field_name
    return names


def test_every_environment_variable_is_a_setting(s_yaml: dict[str, Any]) -> None:
    known = settings_env_names()
    for resource_id in ("on-upload", "on-tick", "dead-letter"):
        env = props(s_yaml, resource_id)["environmentVariables"]
        unknown = sorted(set(env) - set(known))
        assert not unknown, f"{resource_id}: not Settings fields or aliases: {unknown}"
        assert not [k for k in env if k.startswith("FC_")], "FC_* names are reserved by FC"
        assert all(isinstance(v, str) for v in env.values()), "fc3 wants string values"
        assert all(re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", k) for k in env)
        assert len(str(env)) < 4096, "FC limits all variables to 4 KB"


def test_environment_provides_every_required_setting_and_loads(
    s_yaml: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    known = settings_env_names()
    for resource_id in ("on-upload", "on-tick", "dead-letter"):
        env = props(s_yaml, resource_id)["environmentVariables"]
        provided = {known[k] for k in env}
        required = {name for name, info in Settings.model_fields.items() if info.is_required()}
        assert required <= provided
        if resource_id == "dead-letter":
            assert "dashscope_api_key" not in provided, "the dead-letter function never talks to DashScope"
        else:
            assert "dashscope_api_key" in provided, "the functions cannot submit without the key"
            assert env["DASHSCOPE_API_KEY"] == DEPLOY_ENV["DASHSCOPE_API_KEY"], "the key comes from env()"
        for name in [n for n in list(os.environ) if n in known]:
            monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        settings = Settings()
        v = s_yaml["vars"]
        assert settings.bucket == DEPLOY_ENV["OUTPAINT_BUCKET"]
        assert (settings.input_prefix, settings.output_prefix, settings.state_prefix) == (
            v["input_prefix"],
            v["output_prefix"],
            v["state_prefix"],
        )
        assert settings.region == v["region"]
        assert (settings.dashscope_api_key is None) == (resource_id == "dead-letter")


def test_secrets_are_not_committed() -> None:
    text = (ROOT / "s.yaml").read_text(encoding="utf-8")
    assert "DASHSCOPE_API_KEY: ${env('DASHSCOPE_API_KEY')}" in text
    assert not re.search(r"sk-[A-Za-z0-9]{16,}", text)
    assert not re.search(r"\b\d{16}\b", text), "no hard-coded account id"
    assert not re.search(r"LTAI[A-Za-z0-9]{8,}", text), "no access key"


# --- the two files agree --------------------------------------------------------------------------


def test_template_is_rendered_from_s_yaml(render: Any) -> None:
    expected = render.dump_template(render.render_template(render.EXAMPLE_ENV))
    actual = (ROOT / "template.yaml").read_text(encoding="utf-8")
    assert actual == expected, (
        "template.yaml is stale: python deploy/render.py template --example --out template.yaml"
    )


def test_template_agrees_with_s_yaml(
    render: Any, package_module: Any, template: dict[str, Any], template_vars: dict[str, Any]
) -> None:
    """Independent field-by-field comparison (not via the renderer's own mapping code)."""
    s_yaml = render.render_s_yaml(render.EXAMPLE_ENV)
    # Each deploys the package deploy/package.py builds for its runtime.
    flavours = package_module.FLAVOURS
    builtin_zip = "./" + flavours["builtin"].out.relative_to(package_module.ROOT).as_posix()
    custom_zip = "./" + flavours["custom"].out.relative_to(package_module.ROOT).as_posix()
    functions = funcraft_functions(template)
    assert set(functions) == {props(s_yaml, r)["functionName"] for r in fc3_resources(s_yaml)}
    for resource_id in fc3_resources(s_yaml):
        p = props(s_yaml, resource_id)
        f = functions[p["functionName"]]
        fp = f["Properties"]
        assert fp["Handler"] == p["handler"]
        assert fp["Runtime"] == "custom"
        assert fp["CAPort"] == 9000
        assert p["code"] == builtin_zip
        assert fp["CodeUri"] == custom_zip
        assert fp["MemorySize"] == p["memorySize"]
        assert fp["Timeout"] == p["timeout"]
        assert fp["InstanceConcurrency"] == p["instanceConcurrency"]
        assert fp["EnvironmentVariables"] == p["environmentVariables"]
        initializer = p.get("instanceLifecycleConfig", {}).get("initializer", {})
        assert fp.get("Initializer") == initializer.get("handler")
        assert fp.get("InitializationTimeout") == initializer.get("timeout")
        a, fa = p["asyncInvokeConfig"], fp["AsyncConfiguration"]
        assert fa["MaxAsyncRetryAttempts"] == a["maxAsyncRetryAttempts"]
        assert fa["MaxAsyncEventAgeInSeconds"] == a["maxAsyncEventAgeInSeconds"]
        failure = a.get("destinationConfig", {}).get("onFailure", {}).get("destination")
        if failure is None:
            assert "Destination" not in fa
        else:  # FC 2.0 names a function by its service
            name = failure.rsplit("/", 1)[-1]
            service = next(s for s, v in template["Resources"].items() if name in v)
            assert fa["Destination"]["OnFailure"] == failure.replace(
                f":functions/{name}", f":services/{service}/functions/{name}"
            )
        events = f["Events"]
        assert set(events) == {t["triggerName"] for t in p.get("triggers", [])}
        for trigger in p.get("triggers", []):
            e = events[trigger["triggerName"]]
            c = trigger["triggerConfig"]
            if trigger["triggerType"] == "oss":
                assert e["Type"] == "OSS"
                assert e["Properties"]["BucketName"] == template_vars["bucket"]
                assert trigger["sourceArn"].endswith(":" + template_vars["bucket"])
                assert e["Properties"]["Events"] == c["events"]
                assert e["Properties"]["Filter"]["Key"] == {
                    "Prefix": c["filter"]["key"]["prefix"],
                    "Suffix": c["filter"]["key"]["suffix"],
                }
            else:
                assert e["Type"] == "Timer"
                assert e["Properties"]["CronExpression"] == c["cronExpression"]
                assert e["Properties"]["Payload"] == c["payload"]
                assert e["Properties"]["Enable"] == c["enable"]
    for service in template["Resources"].values():
        log = service["Properties"]["LogConfig"]
        assert (log["Project"], log["Logstore"]) == (template_vars["log_project"], template_vars["log_store"])
        assert log["EnableRequestMetrics"] is True, "as fc3's logConfig: auto"
        assert log["EnableInstanceMetrics"] is True


def test_template_keeps_one_service_and_role_per_function(template: dict[str, Any]) -> None:
    for service in template["Resources"].values():
        functions = [
            v for v in service.values() if isinstance(v, dict) and v.get("Type", "").endswith("Function")
        ]
        assert len(functions) == 1
        assert "Role" not in service["Properties"]
        assert len(service["Properties"]["Policies"]) == 1
        assert all(isinstance(p, dict) for p in service["Properties"]["Policies"]), "no managed policy names"
