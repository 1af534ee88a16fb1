"""Read the functions and triggers of a Serverless Devs ``s.yaml`` (fc3, edition 3.0.0) for the local runner.

Only what the local FC runner needs: ``vars``, the ``fc3`` resources' handler, timeout, memory,
environment, initializer, concurrency, async retry settings and onFailure destination, OSS and timer
triggers. Magic variables are
rendered here: ``${vars.x}``, ``${env('X')}``, ``${env('X', 'default')}`` and ``${config('Key')}``;
anything else is refused with the expression quoted, never passed through silently.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_TIMEOUT_SECONDS = 3  # fc3 schema default
DEFAULT_MEMORY_MB = 512
DEFAULT_ASYNC_RETRIES = 3
DEFAULT_EVENT_AGE_SECONDS = 18_000

_EXPRESSION = re.compile(r"\$\{\s*(.*?)\s*\}")
_VARS = re.compile(r"vars\.([A-Za-z_][\w-]*)")
_FUNCTION_ARN = re.compile(r"acs:fc:[^:]*:[^:]*:functions/([A-Za-z_][\w-]*)")
_CALL = re.compile(r"""(env|config)\(\s*(['"])(.*?)\2\s*(?:,\s*(['"])(.*?)\4\s*)?\)""")


class SlsYamlError(ValueError):
    """s.yaml cannot be read or rendered: the message names the resource or expression at fault."""


@dataclass(frozen=True)
class OssTrigger:
    """A native OSS trigger: the events (``oss:``-prefixed) and key filter it fires for."""

    name: str
    events: tuple[str, ...]
    prefix: str
    suffix: str
    bucket: str | None


@dataclass(frozen=True)
class TimerTrigger:
    """A timer trigger: 6-field cron or ``@every``, and the payload string handed to the handler."""

    name: str
    cron: str
    enabled: bool
    payload: str


@dataclass(frozen=True)
class Destination:
    """An async invocation destination: the ARN, and the function it names when it is one."""

    arn: str
    function: str | None = None  # functionName; None for a queue, bus or topic (MNS, EventBridge, ...)


@dataclass(frozen=True)
class FunctionSpec:
    """One fc3 function as the local runner invokes it."""

    resource_id: str
    name: str
    handler: str
    region: str
    timeout: int = DEFAULT_TIMEOUT_SECONDS
    memory: int = DEFAULT_MEMORY_MB
    environment: Mapping[str, str] = field(default_factory=dict)
    initializer: str | None = None
    reserved_concurrency: int | None = None
    max_async_retries: int = DEFAULT_ASYNC_RETRIES
    max_event_age_seconds: int = DEFAULT_EVENT_AGE_SECONDS
    on_failure: Destination | None = None
    oss_triggers: tuple[OssTrigger, ...] = ()
    timer_triggers: tuple[TimerTrigger, ...] = ()


class Renderer:
    """Renders ``${...}`` expressions against ``vars``, an environment and a ``config`` mapping."""

    def __init__(
        self, variables: Mapping[str, Any], env: Mapping[str, str], config: Mapping[str, str] | None = None
    ) -> None:
        self._raw = dict(variables)
        self._env = env
        self._config = dict(config or {})
        self._done: dict[str, Any] = {}
        self._active: list[str] = []

    def render(self, value: Any) -> Any:
        """``value`` with every expression resolved, recursively through lists and mappings.

        A string that is exactly one expression takes the expression's value (a list stays a list);
        otherwise values are spliced into the string.
        """
        if isinstance(value, dict):
            return {key: self.render(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.render(item) for item in value]
        if not isinstance(value, str):
            return value
        whole = _EXPRESSION.fullmatch(value)
        if whole:
            return self._evaluate(whole.group(1))
        return _EXPRESSION.sub(lambda m: _as_text(self._evaluate(m.group(1)), m.group(0)), value)

    def _evaluate(self, expression: str) -> Any:
        variable = _VARS.fullmatch(expression)
        if variable:
            return self._variable(variable.group(1))
        call = _CALL.fullmatch(expression)
        if call:
            kind, name, default = call.group(1), call.group(3), call.group(5)
            source: Mapping[str, str] = self._env if kind == "env" else self._config
            if name in source:
                return source[name]
            if default is not None:
                return default
            what = "environment variable" if kind == "env" else "config key"
            raise SlsYamlError(f"${{{expression}}}: {what} {name} is not set and has no default")
        raise SlsYamlError(
            f"${{{expression}}}: unsupported (use vars.x, env('X'[, 'default']) or config('Key'))"
        )

    def _variable(self, name: str) -> Any:
        if name in self._done:
            return self._done[name]
        if name not in self._raw:
            raise SlsYamlError(f"${{vars.{name}}}: no such variable under vars:")
        if name in self._active:
            raise SlsYamlError("vars refer to each other in a cycle: " + " -> ".join([*self._active, name]))
        self._active.append(name)
        try:
            self._done[name] = self.render(self._raw[name])
        finally:
            self._active.pop()
        return self._done[name]


def _as_text(value: Any, expression: str) -> str:
    if isinstance(value, (dict, list)):
        raise SlsYamlError(f"{expression} is a {type(value).__name__}; it cannot be part of a string")
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def load_functions(
    path: Path, env: Mapping[str, str], config: Mapping[str, str] | None = None
) -> dict[str, FunctionSpec]:
    """The fc3 functions of ``path`` by resource id, rendered against ``env`` and ``config``."""
    import yaml

    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SlsYamlError(f"{path}: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("resources"), dict):
        raise SlsYamlError(f"{path}: no resources: mapping")
    renderer = Renderer(document.get("vars") or {}, env, config)
    functions = {}
    for resource_id, resource in document["resources"].items():
        if not isinstance(resource, dict) or resource.get("component") != "fc3":
            continue
        try:
            functions[resource_id] = _function(resource_id, renderer.render(resource.get("props") or {}))
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, SlsYamlError):
                raise SlsYamlError(f"{path}: resources.{resource_id}: {exc}") from None
            raise SlsYamlError(f"{path}: resources.{resource_id}: bad or missing {exc}") from None
    return functions


def _function(resource_id: str, props: dict[str, Any]) -> FunctionSpec:
    async_config = props.get("asyncInvokeConfig") or {}
    initializer = (props.get("instanceLifecycleConfig") or {}).get("initializer") or {}
    reserved = (props.get("concurrencyConfig") or {}).get("reservedConcurrency")
    triggers = props.get("triggers") or []
    return FunctionSpec(
        resource_id=resource_id,
        name=str(props["functionName"]),
        handler=str(props["handler"]),
        region=str(props["region"]),
        timeout=int(props.get("timeout", DEFAULT_TIMEOUT_SECONDS)),
        memory=int(props.get("memorySize", DEFAULT_MEMORY_MB)),
        environment={str(k): _as_text(v, k) for k, v in (props.get("environmentVariables") or {}).items()},
        initializer=initializer.get("handler"),
        reserved_concurrency=int(reserved) if reserved is not None else None,
        max_async_retries=int(async_config.get("maxAsyncRetryAttempts", DEFAULT_ASYNC_RETRIES)),
        max_event_age_seconds=int(async_config.get("maxAsyncEventAgeInSeconds", DEFAULT_EVENT_AGE_SECONDS)),
        on_failure=_on_failure(async_config),
        oss_triggers=tuple(_oss(t) for t in triggers if t.get("triggerType") == "oss"),
        timer_triggers=tuple(_timer(t) for t in triggers if t.get("triggerType") == "timer"),
    )


def _on_failure(async_config: dict[str, Any]) -> Destination | None:
    """``destinationConfig.onFailure.destination``: a function ARN
    (``acs:fc:<region>:<account>:functions/<name>``) or another service's (``acs:mns:...``)."""
    arn = ((async_config.get("destinationConfig") or {}).get("onFailure") or {}).get("destination")
    if not arn:
        return None
    arn = str(arn)
    function = _FUNCTION_ARN.fullmatch(arn)
    if function:
        return Destination(arn, function.group(1))
    if arn.startswith("acs:fc:") or not arn.startswith("acs:"):
        raise SlsYamlError(
            f"onFailure destination {arn!r}: expected acs:fc:<region>:<account>:functions/<name> "
            "or another service's acs: ARN"
        )
    return Destination(arn)


def _oss(trigger: dict[str, Any]) -> OssTrigger:
    config = trigger["triggerConfig"]
    key = (config.get("filter") or {}).get("key") or {}
    arn = str(trigger.get("sourceArn") or "")
    return OssTrigger(
        name=str(trigger["triggerName"]),
        events=tuple(str(e) for e in config["events"]),
        prefix=str(key.get("prefix") or ""),
        suffix=str(key.get("suffix") or ""),
        bucket=arn.rsplit(":", 1)[-1] if arn.startswith("acs:oss:") else None,
    )


_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def _flag(value: Any, name: str) -> bool:
    """A YAML boolean, or the text an ``${env(...)}`` expression renders to (``"false"`` is False)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise SlsYamlError(f"{name}: expected true or false, got {value!r}")


def _timer(trigger: dict[str, Any]) -> TimerTrigger:
    config = trigger["triggerConfig"]
    return TimerTrigger(
        name=str(trigger["triggerName"]),
        cron=str(config["cronExpression"]),
        enabled=_flag(config.get("enable", True), "enable"),
        payload=str(config.get("payload") or ""),
    )
