"""The s.yaml renderer and reader of the local FC runner, on small documents and on the real s.yaml."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from outpaint.local.slsyaml import Renderer, SlsYamlError, load_functions

REPO = Path(__file__).resolve().parents[2]


def render(value, variables=None, env=None, config=None):
    return Renderer(variables or {}, env or {}, config).render(value)


def test_vars_env_defaults_and_config_are_spliced_into_strings():
    variables = {"region": "${env('REGION', 'cn-beijing')}", "bucket": "b1"}
    text = "acs:oss:${vars.region}:${config('AccountID')}:${vars.bucket}/${env(\"SUB\")}"
    assert render(text, variables, {"SUB": "x"}, {"AccountID": "42"}) == "acs:oss:cn-beijing:42:b1/x"
    assert render("${vars.region}", variables, {"REGION": "cn-hangzhou"}) == "cn-hangzhou"


def test_a_whole_expression_keeps_its_type_and_nesting_is_rendered():
    variables = {"suffixes": [".jpg", ".png"], "n": 3}
    assert render({"a": ["${vars.suffixes}"], "b": "${vars.n}"}, variables) == {
        "a": [[".jpg", ".png"]],
        "b": 3,
    }
    assert render("x-${vars.n}-${vars.n}", variables) == "x-3-3"


def test_env_with_empty_default_renders_empty():
    assert render("${env('UNSET_FOR_TEST', '')}") == ""


@pytest.mark.parametrize(
    ("text", "variables", "message"),
    [
        ("${env('OUTPAINT_TEST_UNSET')}", {}, "OUTPAINT_TEST_UNSET is not set"),
        ("${vars.missing}", {}, "no such variable"),
        ("${vars.a}", {"a": "${vars.b}", "b": "${vars.a}"}, "cycle: a -> b -> a"),
        ("${resources.x.output}", {}, "unsupported"),
        ("${config('AccountID')}", {}, "config key AccountID"),
        ("pre-${vars.l}", {"l": [1]}, "cannot be part of a string"),
    ],
)
def test_what_cannot_be_rendered_is_refused_with_the_expression(text, variables, message):
    with pytest.raises(SlsYamlError, match=message):
        render(text, variables)


def test_the_real_s_yaml_yields_both_functions_with_their_triggers():
    env = {"OUTPAINT_BUCKET": "bkt", "DASHSCOPE_API_KEY": "sk-x"}
    functions = load_functions(REPO / "s.yaml", env, {"AccountID": "1"})

    upload, tick = functions["on-upload"], functions["on-tick"]
    document = yaml.safe_load((REPO / "s.yaml").read_text())
    raw, raw_vars = document["resources"], document["vars"]
    for function in (upload, tick):
        props = raw[function.resource_id]["props"]
        assert (function.timeout, function.memory) == (props["timeout"], props["memorySize"])
        assert function.reserved_concurrency == props["concurrencyConfig"]["reservedConcurrency"]
    assert upload.handler == "handler.on_upload"
    assert upload.max_async_retries == 3
    assert upload.initializer == "handler.initialize"
    assert upload.environment["OUTPAINT_BUCKET"] == "bkt"
    # ${vars.x} is resolved: the variable's own value arrives in the environment.
    assert upload.environment["OUTPAINT_TICK_BUDGET_SECONDS"] == raw_vars["tick_budget_seconds"]
    assert upload.environment["OUTPAINT_DEFAULT_RATIO"] == ""
    assert [t.suffix for t in upload.oss_triggers] == [""], "one trigger, every key under the prefix"
    for trigger in upload.oss_triggers:
        assert trigger.prefix == "inbox/"
        assert trigger.bucket == "bkt"
        assert set(trigger.events) == {
            "oss:ObjectCreated:PutObject",
            "oss:ObjectCreated:PostObject",
            "oss:ObjectCreated:CompleteMultipartUpload",
        }
    assert (tick.handler, tick.timeout, tick.max_async_retries, tick.reserved_concurrency) == (
        "handler.on_tick",
        90,
        0,
        1,
    )
    [timer] = tick.timer_triggers
    assert (timer.cron, timer.enabled, timer.payload) == ("0 * * * * *", True, '{"action": "tick"}')
    assert tick.environment == upload.environment
    # The deployment's dead letters: a queue or the dead-letter function, either one parsed.
    assert upload.on_failure is not None
    assert upload.on_failure.arn.startswith(("acs:mns:", "acs:fc:"))
    assert tick.on_failure is None


def test_the_real_s_yaml_needs_the_bucket_from_the_environment():
    with pytest.raises(SlsYamlError, match="OUTPAINT_BUCKET"):
        load_functions(REPO / "s.yaml", {"DASHSCOPE_API_KEY": "k"}, {"AccountID": "1"})


def test_defaults_apply_when_props_leave_them_out(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        "edition: 3.0.0\nresources:\n  f:\n    component: fc3\n    props:\n"
        "      region: cn-beijing\n      functionName: f\n      handler: index.handler\n"
        "  other:\n    component: something-else\n"
    )
    [(resource_id, function)] = load_functions(path, {}).items()
    assert resource_id == "f"
    assert (function.timeout, function.memory, function.max_async_retries) == (3, 512, 3)
    assert function.oss_triggers == function.timer_triggers == ()


def test_a_function_without_a_handler_is_named_in_the_error(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("resources:\n  f:\n    component: fc3\n    props: {region: r, functionName: f}\n")
    with pytest.raises(SlsYamlError, match=r"resources\.f: bad or missing 'handler'"):
        load_functions(path, {})


TIMER_S_YAML = """\
resources:
  f:
    component: fc3
    props:
      region: r
      functionName: f
      handler: index.handler
      triggers:
        - triggerName: tick
          triggerType: timer
          triggerConfig:
            cronExpression: "0 * * * * *"
            enable: ${env('TICK_ON', 'true')}
"""


@pytest.mark.parametrize(
    ("value", "enabled"),
    [("false", False), ("False", False), ("0", False), ("no", False), ("true", True), ("1", True)],
)
def test_timer_enable_from_an_env_expression_is_parsed_as_a_boolean(tmp_path, value, enabled):
    path = tmp_path / "s.yaml"
    path.write_text(TIMER_S_YAML)
    [timer] = load_functions(path, {"TICK_ON": value})["f"].timer_triggers
    assert timer.enabled is enabled


def test_timer_enable_that_is_no_boolean_is_refused(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(TIMER_S_YAML)
    with pytest.raises(SlsYamlError, match="enable: expected true or false, got 'maybe'"):
        load_functions(path, {"TICK_ON": "maybe"})


def test_s_yaml_comments_quote_the_tick_budget_it_sets():
    text = (REPO / "s.yaml").read_text()
    variables = yaml.safe_load(text)["vars"]
    budget, margin = variables["tick_budget_seconds"], variables["tick_safety_margin_seconds"]
    assert re.findall(r"OUTPAINT_TICK_BUDGET_SECONDS \((\d+)\)", text) == [budget]
    assert re.findall(r"OUTPAINT_TICK_SAFETY_MARGIN_SECONDS \((\d+)\)", text) == [margin]
    assert re.findall(r"(\d+) s > (\d+) \+ (\d+)", text) == [("90", budget, margin)]


def destination_s_yaml(tmp_path: Path, destination: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(
        "resources:\n  f:\n    component: fc3\n    props:\n"
        "      region: r\n      functionName: f\n      handler: index.handler\n"
        "      asyncInvokeConfig:\n        destinationConfig:\n          onFailure:\n"
        f"            destination: {json.dumps(destination)}\n"
    )
    return path


def test_an_on_failure_function_arn_names_the_function(tmp_path):
    arn = "acs:fc:${env('REGION', 'cn-beijing')}:${config('AccountID')}:functions/outpaint-dead-letter"
    destination = load_functions(destination_s_yaml(tmp_path, arn), {}, {"AccountID": "42"})["f"].on_failure
    assert destination is not None
    assert (destination.arn, destination.function) == (
        "acs:fc:cn-beijing:42:functions/outpaint-dead-letter",
        "outpaint-dead-letter",
    )


def test_an_on_failure_queue_is_kept_without_a_function(tmp_path):
    arn = "acs:mns:cn-beijing:42:/queues/outpaint-dead-letters/messages"
    destination = load_functions(destination_s_yaml(tmp_path, arn), {})["f"].on_failure
    assert destination is not None
    assert (destination.arn, destination.function) == (arn, None)


@pytest.mark.parametrize("arn", ["acs:fc:cn-beijing:42:services/s/functions/f", "outpaint-dead-letter"])
def test_an_on_failure_destination_that_is_no_arn_is_refused(tmp_path, arn):
    with pytest.raises(SlsYamlError, match=r"resources\.f: onFailure destination .*expected acs:fc:"):
        load_functions(destination_s_yaml(tmp_path, arn), {})
