"""Render deployment artefacts and plans from the one source of truth, ``s.yaml``.

    python deploy/render.py template [--example] [--out PATH]   Funcraft template.yaml
    python deploy/render.py policies [--example]                the roles' RAM policies, filled in
    python deploy/render.py plan [--example] [--preview FILE]   what `make deploy` creates or updates
    python deploy/render.py removal [--example] [--preview FILE] what `make remove` deletes (or refuses)
    python deploy/render.py var NAME [--example] [--preview FILE] one rendered s.yaml vars entry

``s.yaml`` variables are resolved the way Serverless Devs does it: ``${vars.x}``,
``${env('X')}`` / ``${env('X', 'default')}``, and ``${config('AccountID')}`` from
``ALIBABA_CLOUD_ACCOUNT_ID`` (left as is when unset). ``--preview`` reads what `s preview -o json`
rendered instead (deploy/deploy.sh does). Without ``--example`` the values come from this process's
environment (``OUTPAINT_BUCKET``, ``DASHSCOPE_API_KEY``, ...); ``--example`` uses fixed placeholder
values: that is how the committed ``template.yaml`` is produced, and tests/deploy checks that it is up
to date. The roles and their policies are the ``ram`` resources of s.yaml.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
S_YAML = ROOT / "s.yaml"

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


def functions(rendered: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The fc3 resources of a rendered s.yaml: resource id -> props."""
    return {rid: r["props"] for rid, r in rendered["resources"].items() if r["component"] == "fc3"}


def roles(rendered: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The RAM roles a rendered s.yaml creates (``ram`` component): resource id -> props."""
    return {rid: r["props"] for rid, r in rendered["resources"].items() if r["component"] == "ram"}


def role_policy(role: Mapping[str, Any]) -> dict[str, Any]:
    """The one custom policy of a role, as the ``ram`` component creates it (Version 1)."""
    (policy,) = role["policies"]
    return {"Version": "1", "Statement": policy["statement"]}


def function_role(rendered: Mapping[str, Any], resource_id: str) -> dict[str, Any]:
    """The role (ram props) whose ARN is function ``resource_id``'s ``role``."""
    name = functions(rendered)[resource_id]["role"].rsplit("/", 1)[-1]
    matches = [r for r in roles(rendered).values() if r["name"] == name]
    if not matches:
        raise RenderError(f"{resource_id}: role {name!r} is not created by any ram resource in s.yaml")
    return matches[0]


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
    variables = rendered["vars"]
    resources: dict[str, Any] = {}
    services = {p["functionName"]: service_name(rid) for rid, p in functions(rendered).items()}
    for resource_id, props in functions(rendered).items():
        service: dict[str, Any] = {
            "Type": "Aliyun::Serverless::Service",
            "Properties": {
                "Description": f"outpaint {resource_id}: {props['description']}",
                "InternetAccess": props["internetAccess"],
                # fc3's `logConfig: auto` with the names deploy/deploy.sh gives it.
                "LogConfig": {
                    "Project": variables["log_project"],
                    "Logstore": variables["log_store"],
                    "EnableRequestMetrics": True,
                    "EnableInstanceMetrics": True,
                },
                # The policy of the function's ram role in s.yaml: the service role gets exactly this.
                "Policies": [role_policy(function_role(rendered, resource_id))],
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
# GENERATED by `python deploy/render.py template --example --out template.yaml` from s.yaml. Do not
# edit: change s.yaml and re-render (a test fails when this file is stale).
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
# - One service per function, so each function keeps its own least-privilege role: Funcraft creates
#   the service role from `Policies:` (the same statements as s.yaml's ram roles) and names it itself.
# - With AsyncConfiguration, Funcraft also attaches AliyunFCInvocationAccess and an MNS send policy on
#   * to that role: broader than s.yaml, which `make deploy` avoids.
# - The log store is not created: `LogConfig: Auto` would pick Funcraft's own project name, which the
#   policies cannot name in advance. Deploy with `make deploy` first, or create it yourself.
# - No reserved concurrency property: after deploying, limit outpaint-on-tick to 1 instance in the
#   console (the lease object in the state prefix still prevents two ticks from working at once).
"""


def dump_template(template: Mapping[str, Any]) -> str:
    body = yaml.safe_dump(dict(template), sort_keys=False, width=110, allow_unicode=True)
    return TEMPLATE_HEADER + body


# --- plans: what `make deploy` and `make remove` would do ---------------------------------------


def _statement_lines(policy: Mapping[str, Any]) -> list[str]:
    lines = []
    for statement in policy["Statement"]:
        condition = statement.get("Condition")
        suffix = f" if {json.dumps(condition, separators=(',', ':'))}" if condition else ""
        actions = ", ".join(statement["Action"])
        for resource in statement["Resource"]:
            lines.append(f"    {statement['Effect'].lower()} {actions} on {resource}{suffix}")
    return lines


def _trigger_line(trigger: Mapping[str, Any]) -> str:
    config = trigger["triggerConfig"]
    if trigger["triggerType"] == "oss":
        key = config["filter"]["key"]
        events = ", ".join(e.removeprefix("oss:ObjectCreated:") for e in config["events"])
        role = trigger.get("invocationRole", "").rsplit("/", 1)[-1]
        where = f"{trigger['sourceArn'].rsplit(':', 1)[-1]}/{key['prefix']}*{key['suffix']}"
        return f"    trigger {trigger['triggerName']} (oss): {where}, events {events}, role {role}"
    schedule = config.get("cronExpression", "")
    return f"    trigger {trigger['triggerName']} ({trigger['triggerType']}): {schedule}"


def deploy_plan(rendered: Mapping[str, Any]) -> list[str]:
    """The resources `s deploy` creates or updates, one line per setting that matters."""
    variables = rendered["vars"]
    lines = [f"region {variables['region']}, bucket {variables['bucket']} (used, never created or changed)"]
    for role in roles(rendered).values():
        (policy,) = role["policies"]
        lines.append(f"role {role['name']} (trusted by {role['service']}), policy {policy['name']}:")
        lines += _statement_lines(role_policy(role))
    for props in functions(rendered).values():
        reserved = props.get("concurrencyConfig", {}).get("reservedConcurrency")
        concurrency = "no reserved concurrency" if reserved is None else f"reserved concurrency {reserved}"
        lines.append(
            f"function {props['functionName']}: {props['runtime']} {props['handler']}, "
            f"{props['memorySize']} MB, {props.get('cpu', '?')} vCPU, timeout {props['timeout']} s, "
            f"{concurrency}, role {props['role'].rsplit('/', 1)[-1]}"
        )
        async_config = props.get("asyncInvokeConfig", {})
        if async_config:
            failure = async_config.get("destinationConfig", {}).get("onFailure", {}).get("destination")
            lines.append(
                f"    async: {async_config['maxAsyncRetryAttempts']} retries, events kept "
                f"{async_config['maxAsyncEventAgeInSeconds']} s, on failure {failure or 'dropped'}"
            )
        log = props["logConfig"]
        if log == "auto":
            log = f"auto: {variables['log_project']}/{variables['log_store']} (created if missing)"
        else:
            log = f"{log['project']}/{log['logstore']}"
        lines.append(f"    logs: {log}")
        lines += [_trigger_line(t) for t in props.get("triggers", [])]
    return lines


# Components whose `remove` deletes only what they deployed: fc3 a function with its triggers and
# async config, ram a role with its custom policies. Nothing else may be in s.yaml for `make remove`.
REMOVABLE_COMPONENTS = ("fc3", "ram")


def removal_plan(rendered: Mapping[str, Any]) -> list[str]:
    """What `s remove` deletes, last deployed first. Refuses anything that could touch the bucket."""
    bucket = rendered["vars"]["bucket"]
    lines = []
    for resource_id, resource in reversed(list(rendered["resources"].items())):
        if resource["component"] not in REMOVABLE_COMPONENTS:
            raise RenderError(
                f"{resource_id}: component {resource['component']!r} is not one `make remove` may remove "
                f"(only {', '.join(REMOVABLE_COMPONENTS)}): it could delete the bucket or its contents"
            )
        props = resource["props"]
        if resource["component"] == "fc3":
            triggers = ", ".join(t["triggerName"] for t in props.get("triggers", [])) or "none"
            lines.append(f"function {props['functionName']} with its triggers ({triggers}) and async config")
        else:
            policies = ", ".join(p["name"] for p in props.get("policies", []))
            lines.append(f"role {props['name']} with its policy {policies}")
    lines.append(f"kept: bucket {bucket} and every object in it; the log project (it holds the logs)")
    return lines


def load_preview(path: Path) -> dict[str, Any]:
    """`s preview -o json` output (a warning line may come before the JSON)."""
    text = path.read_text(encoding="utf-8")
    if "{" not in text:
        raise RenderError(f"{path}: no JSON in the s preview output")
    return json.loads(text[text.index("{") :])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("template", "policies", "plan", "removal", "var"):
        p = sub.add_parser(name)
        p.add_argument("--example", action="store_true", help="use placeholder values, not the environment")
        if name == "template":
            p.add_argument("--out", type=Path, help="write here instead of stdout")
        else:
            p.add_argument("--preview", type=Path, help="`s preview -o json` output to read")
        if name == "var":
            p.add_argument("name", help="an s.yaml vars entry, printed rendered")
    args = parser.parse_args(argv)
    env = dict(EXAMPLE_ENV) if args.example else dict(os.environ)
    try:
        sys.stdout.write(_run(args, env))
    except RenderError as exc:
        print(f"render.py: {exc}", file=sys.stderr)
        return 2
    return 0


def _run(args: argparse.Namespace, env: Mapping[str, str]) -> str:
    """The output of one command (or writes template.yaml to --out and returns nothing)."""
    if args.command == "template":
        text = dump_template(render_template(env))
        if not args.out:
            return text
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
        return ""
    rendered = load_preview(args.preview) if args.preview else render_s_yaml(env)
    if args.command == "var":
        if args.name not in rendered["vars"]:
            raise RenderError(f"s.yaml has no vars.{args.name}")
        return f"{rendered['vars'][args.name]}\n"
    if args.command == "policies":
        documents = {r["name"]: json.dumps(role_policy(r), indent=2) for r in roles(rendered).values()}
        return "".join(f"# {name}\n{document}\n" for name, document in documents.items())
    lines = deploy_plan(rendered) if args.command == "plan" else removal_plan(rendered)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
