"""Render deployment artefacts from the one source of truth, ``s.yaml`` + ``deploy/policies/*.json``.

    python deploy/render.py template [--example] [--out PATH]   Funcraft template.yaml
    python deploy/render.py policies [--example] [--out-dir DIR] RAM policy documents, filled in
    python deploy/render.py roles [--example]                    `aliyun ram` commands creating the roles

``s.yaml`` variables are resolved the way Serverless Devs does it: ``${vars.x}``,
``${env('X')}`` / ``${env('X', 'default')}``, and ``${config('AccountID')}`` from
``ALIBABA_CLOUD_ACCOUNT_ID`` (left as is when unset). Policies use ``*`` for the account: a role only
ever acts inside its own account. Without ``--example`` the values
come from this process's environment (``OUTPAINT_BUCKET``, ``DASHSCOPE_API_KEY``, ...); ``--example``
uses fixed placeholder values: that is how the committed ``template.yaml`` is produced, and
tests/deploy checks that it is up to date.

The policy files are ``string.Template`` documents with these placeholders: bucket, input_prefix,
output_prefix, state_prefix, region, log_project, log_store, upload_function, upload_service,
dead_letter_function, dead_letter_service. Each function's policy is ``deploy/policies/<resource id>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import string
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
S_YAML = ROOT / "s.yaml"
POLICY_DIR = ROOT / "deploy" / "policies"

# The values the committed template.yaml is rendered with. No secret and no account id in the repo.
ACCOUNT_ID_ENV = "ALIBABA_CLOUD_ACCOUNT_ID"
EXAMPLE_ENV = {
    ACCOUNT_ID_ENV: "YOUR_ACCOUNT_ID",
    "OUTPAINT_BUCKET": "my-outpaint-bucket",
    "DASHSCOPE_API_KEY": "REPLACE_WITH_DASHSCOPE_API_KEY",
}

# Funcraft (FC 2.0) needs a service around each function; one per function keeps one role per function.
CUSTOM_RUNTIME_PORT = 9000
# The custom-runtime package (`deploy/package.py --flavour custom`: s.yaml's package plus
# functions-framework and the bootstrap). s.yaml's `code` is the built-in-runtime package.
CUSTOM_RUNTIME_CODE = "./build/outpaint-fc-custom.zip"

_EXPR = re.compile(r"\$\{([^{}]*)\}")
_ENV_CALL = re.compile(r"""env\(\s*['"]([^'"]+)['"]\s*(?:,\s*['"]([^'"]*)['"]\s*)?\)""")


class RenderError(Exception):
    """s.yaml or a policy cannot be rendered (a missing environment variable, an unknown variable)."""


def load_raw(path: Path = S_YAML) -> dict[str, Any]:
    """s.yaml as plain YAML (anchors and merge keys applied, variables not resolved)."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _resolve_expr(expr: str, variables: Mapping[str, Any], env: Mapping[str, str]) -> Any:
    expr = expr.strip()
    if expr.startswith("vars."):
        name = expr[len("vars.") :]
        if name not in variables:
            raise RenderError(f"${{vars.{name}}} is not defined in s.yaml vars")
        return variables[name]
    match = _ENV_CALL.fullmatch(expr)
    if match:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise RenderError(f"env('{name}') not found: set {name}")
    if expr.replace(" ", "") in ("config('AccountID')", 'config("AccountID")'):
        # `s` takes it from the deploy credentials; we take the same value from the environment.
        return env.get(ACCOUNT_ID_ENV, "${" + expr + "}")
    raise RenderError(f"unsupported expression ${{{expr}}}")


def resolve(value: Any, variables: Mapping[str, Any], env: Mapping[str, str]) -> Any:
    """Substitute ``${...}`` in every string of ``value`` (recursively)."""
    if isinstance(value, dict):
        return {k: resolve(v, variables, env) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, variables, env) for v in value]
    if not isinstance(value, str):
        return value
    whole = _EXPR.fullmatch(value)
    if whole:
        return _resolve_expr(whole.group(1), variables, env)
    return _EXPR.sub(lambda m: str(_resolve_expr(m.group(1), variables, env)), value)


def render_s_yaml(env: Mapping[str, str], path: Path = S_YAML) -> dict[str, Any]:
    """s.yaml with vars and env() resolved (what `s preview` prints, minus config())."""
    raw = load_raw(path)
    variables = resolve(raw.get("vars", {}), {}, env)
    rendered = dict(raw)
    rendered["vars"] = variables
    rendered["resources"] = resolve(raw["resources"], variables, env)
    return rendered


def service_name(resource_id: str) -> str:
    """Funcraft service that holds the function of s.yaml resource ``resource_id``."""
    return "outpaint-" + resource_id.removeprefix("on-")


def policy_context(rendered: Mapping[str, Any]) -> dict[str, str]:
    """Placeholder values of deploy/policies/*.json for a rendered s.yaml."""
    variables = rendered["vars"]
    upload = rendered["resources"]["on-upload"]["props"]
    dead_letter = rendered["resources"]["dead-letter"]["props"]
    return {
        "bucket": variables["bucket"],
        "input_prefix": variables["input_prefix"],
        "output_prefix": variables["output_prefix"],
        "state_prefix": variables["state_prefix"],
        "region": variables["region"],
        "log_project": variables["log_project"],
        "log_store": variables["log_store"],
        "upload_function": upload["functionName"],
        "upload_service": service_name("on-upload"),
        "dead_letter_function": dead_letter["functionName"],
        "dead_letter_service": service_name("dead-letter"),
    }


def render_policy(name: str, context: Mapping[str, str]) -> dict[str, Any]:
    """deploy/policies/<name>.json with its placeholders filled in (every one must be known)."""
    text = (POLICY_DIR / f"{name}.json").read_text(encoding="utf-8")
    try:
        return json.loads(string.Template(text).substitute(context))
    except KeyError as exc:
        raise RenderError(f"policy {name}: unknown placeholder {exc}") from None


# --- Funcraft template --------------------------------------------------------------------------


_FC3_FUNCTION_ARN = re.compile(r"acs:fc:(?P<region>[^:]*):(?P<account>[^:]*):functions/(?P<name>[^/]+)")


def _funcraft_destination(arn: str, services: Mapping[str, str]) -> str:
    """An FC 3.0 function ARN in the FC 2.0 form (``services/<s>/functions/<f>``); other ARNs as they are."""
    match = _FC3_FUNCTION_ARN.fullmatch(arn)
    if match is None or match["name"] not in services:
        return arn
    return (
        f"acs:fc:{match['region']}:{match['account']}:services/{services[match['name']]}"
        f"/functions/{match['name']}"
    )


def _function(props: Mapping[str, Any], services: Mapping[str, str]) -> dict[str, Any]:
    lifecycle = props.get("instanceLifecycleConfig", {}).get("initializer")
    properties: dict[str, Any] = {
        "Description": props["description"],
        # Funcraft's runtime list stops at python3 (3.6): run the same code through the custom runtime,
        # whose `bootstrap` (in the package root) starts `python3 -m outpaint.runtime` on CAPort.
        "Runtime": "custom",
        "Handler": props["handler"],  # passed to the shim as x-fc-function-handler
        "CodeUri": CUSTOM_RUNTIME_CODE,  # not props["code"]: that package has no shim
        "CAPort": CUSTOM_RUNTIME_PORT,
        "Timeout": props["timeout"],
        "MemorySize": props["memorySize"],
        "InstanceConcurrency": props["instanceConcurrency"],
        "EnvironmentVariables": dict(props["environmentVariables"]),
    }
    if lifecycle:
        properties["Initializer"] = lifecycle["handler"]
        properties["InitializationTimeout"] = lifecycle["timeout"]
    async_config = props.get("asyncInvokeConfig")
    if async_config:
        funcraft_async: dict[str, Any] = {
            "MaxAsyncRetryAttempts": async_config["maxAsyncRetryAttempts"],
            "MaxAsyncEventAgeInSeconds": async_config["maxAsyncEventAgeInSeconds"],
        }
        failure = async_config.get("destinationConfig", {}).get("onFailure", {}).get("destination")
        if failure:
            funcraft_async["Destination"] = {"OnFailure": _funcraft_destination(failure, services)}
        properties["AsyncConfiguration"] = funcraft_async
    return properties


def _events(props: Mapping[str, Any]) -> dict[str, Any]:
    events: dict[str, Any] = {}
    for trigger in props.get("triggers", []):
        config = trigger["triggerConfig"]
        if trigger["triggerType"] == "oss":
            bucket = trigger["sourceArn"].rsplit(":", 1)[-1]
            events[trigger["triggerName"]] = {
                "Type": "OSS",
                "Properties": {
                    "BucketName": bucket,
                    "Events": list(config["events"]),
                    "Filter": {
                        "Key": {
                            "Prefix": config["filter"]["key"]["prefix"],
                            "Suffix": config["filter"]["key"]["suffix"],
                        }
                    },
                },
            }
        elif trigger["triggerType"] == "timer":
            events[trigger["triggerName"]] = {
                "Type": "Timer",
                "Properties": {
                    "CronExpression": config["cronExpression"],
                    "Enable": config["enable"],
                    "Payload": config.get("payload", ""),
                },
            }
        else:  # pragma: no cover - s.yaml has only these two
            raise RenderError(f"trigger type {trigger['triggerType']!r} has no Funcraft mapping here")
    return events


def render_template(env: Mapping[str, str]) -> dict[str, Any]:
    """The Funcraft (ROS 2018-04-03) template equivalent of s.yaml."""
    rendered = render_s_yaml(env)
    context = policy_context(rendered)
    resources: dict[str, Any] = {}
    services = {r["props"]["functionName"]: service_name(rid) for rid, r in rendered["resources"].items()}
    for resource_id, resource in rendered["resources"].items():
        props = resource["props"]
        log = props["logConfig"]
        service: dict[str, Any] = {
            "Type": "Aliyun::Serverless::Service",
            "Properties": {
                "Description": f"outpaint {resource_id}: {props['description']}",
                "InternetAccess": props["internetAccess"],
                "LogConfig": {
                    "Project": log["project"],
                    "Logstore": log["logstore"],
                    "EnableRequestMetrics": log["enableRequestMetrics"],
                    "EnableInstanceMetrics": log["enableInstanceMetrics"],
                },
                # Inlined from deploy/policies/<resource id>.json: the service role gets exactly this.
                "Policies": [render_policy(resource_id, context)],
            },
            props["functionName"]: {
                "Type": "Aliyun::Serverless::Function",
                "Properties": _function(props, services),
                "Events": _events(props),
            },
        }
        resources[service_name(resource_id)] = service
    return {
        "ROSTemplateFormatVersion": "2015-09-01",
        "Transform": "Aliyun::Serverless-2018-04-03",
        "Resources": resources,
    }


TEMPLATE_HEADER = """\
# GENERATED by `python deploy/render.py template --example --out template.yaml` from s.yaml and
# deploy/policies/*.json. Do not edit: change s.yaml or the policies and re-render (a test fails when
# this file is stale).
#
# Funcraft / ROS (Aliyun::Serverless-2018-04-03) form of the same deployment, for `fun validate` and
# for accounts that still deploy with Funcraft or ROS. `make deploy` uses s.yaml, not this file.
# Rendered with placeholder values: bucket my-outpaint-bucket, account YOUR_ACCOUNT_ID and
# DASHSCOPE_API_KEY REPLACE_WITH_DASHSCOPE_API_KEY. For a deployable copy, set the environment as
# for `make deploy` and run `python deploy/render.py template --out build/template.yaml` (build/ is
# not committed: it would hold the key).
#
# Differences from s.yaml, all forced by the format:
# - Runtime `custom` (the format knows no python3.10+), from the custom-runtime package
#   build/outpaint-fc-custom.zip (`make package` builds it beside s.yaml's build/outpaint-fc.zip): its
#   `bootstrap` starts `python3 -m outpaint.runtime` (functions-framework) on CAPort 9000, which needs a
#   python3 >= 3.12 in the instance (the bootstrap checks and says so); the handler names are passed
#   through unchanged.
# - One service per function, so each function keeps its own least-privilege role (Policies are
#   per service in this format).
# - No reserved concurrency property: after deploying, limit outpaint-on-tick to 1 instance in the
#   console (the lease object in the state prefix still prevents two ticks from working at once).
# - With AsyncConfiguration and no Role, Funcraft also attaches AliyunFCInvocationAccess and an MNS
#   send policy on * to the service role; to avoid that, pre-create the roles from deploy/policies
#   (`python deploy/render.py roles`) and set `Role:` instead of `Policies:`.
"""


def dump_template(template: Mapping[str, Any]) -> str:
    body = yaml.safe_dump(dict(template), sort_keys=False, width=110, allow_unicode=True)
    return TEMPLATE_HEADER + body


# --- RAM roles ------------------------------------------------------------------------------------


def role_commands(env: Mapping[str, str]) -> list[str]:
    """`aliyun ram` CLI commands that create the four roles with their policies (idempotent-ish)."""
    rendered = render_s_yaml(env)
    context = policy_context(rendered)
    variables = rendered["vars"]
    fc_trust = json.dumps(json.loads((POLICY_DIR / "fc-trust.json").read_text()), separators=(",", ":"))
    oss_trust = json.dumps(json.loads((POLICY_DIR / "oss-trust.json").read_text()), separators=(",", ":"))
    roles = [
        (variables["upload_role"], fc_trust, "on-upload"),
        (variables["tick_role"], fc_trust, "on-tick"),
        (variables["trigger_role"], oss_trust, "oss-trigger-invoke"),
        (variables["dead_letter_role"], fc_trust, "dead-letter"),
    ]
    lines = []
    for role, trust, policy in roles:
        document = json.dumps(render_policy(policy, context), separators=(",", ":"))
        q = shlex.quote
        lines += [
            f"aliyun ram CreateRole --RoleName {q(role)} --AssumeRolePolicyDocument {q(trust)}",
            f"aliyun ram CreatePolicy --PolicyName {q(role)} --PolicyDocument {q(document)}",
            f"aliyun ram AttachPolicyToRole --PolicyType Custom --PolicyName {q(role)} --RoleName {q(role)}",
        ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("template", "policies", "roles"):
        p = sub.add_parser(name)
        p.add_argument("--example", action="store_true", help="use placeholder values, not the environment")
        if name == "template":
            p.add_argument("--out", type=Path, help="write here instead of stdout")
        if name == "policies":
            p.add_argument("--out-dir", type=Path, help="write <name>.json files here instead of stdout")
    args = parser.parse_args(argv)
    env = dict(EXAMPLE_ENV) if args.example else dict(os.environ)
    try:
        if args.command == "template":
            text = dump_template(render_template(env))
            if args.out:
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(text, encoding="utf-8")
            else:
                sys.stdout.write(text)
        elif args.command == "policies":
            context = policy_context(render_s_yaml(env))
            for name in ("on-upload", "on-tick", "dead-letter", "oss-trigger-invoke"):
                text = json.dumps(render_policy(name, context), indent=2) + "\n"
                if args.out_dir:
                    args.out_dir.mkdir(parents=True, exist_ok=True)
                    (args.out_dir / f"{name}.json").write_text(text, encoding="utf-8")
                else:
                    sys.stdout.write(f"# {name}\n{text}")
        else:
            sys.stdout.write("\n".join(role_commands(env)) + "\n")
    except RenderError as exc:
        print(f"render.py: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
