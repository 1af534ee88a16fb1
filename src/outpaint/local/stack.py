"""The local stack: the OSS emulator, the DashScope emulator (or the real service) and the FC runner,
wired the way the cloud deployment is, in one object that `outpaint local up` and `outpaint demo` share.

The functions get s.yaml's environment overlaid by the stack's own values: the emulators' endpoints, the
API key, the result origin, and two local tunings (poll interval, retry backoff) that keep feedback
quick; ``extra_env`` (``--env``) overrides any of them. Credentials reach the functions as FC passes
them: the context and the ``ALIBABA_CLOUD_*`` variables, here the stack's own throwaway keys.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from outpaint.local.fc import FcRunner
from outpaint.local.invokers import CustomRuntimeInvoker, Identity, InProcessInvoker, Invoker
from outpaint.local.logs import LogSink, route_logging
from outpaint.local.slsyaml import FunctionSpec, load_functions
from outpaint.local.spool import Spool

if TYPE_CHECKING:
    from outpaint.config import Settings
    from outpaint.local.dashscope import DashScopeEmulator
    from outpaint.local.oss import OssEmulator

DEFAULT_OSS_PORT = 9100
DEFAULT_DASHSCOPE_PORT = 9200
DEFAULT_DATA_DIR = Path(".outpaint-local")
LOCAL_BUCKET = "outpaint-local"
LOCAL_ACCOUNT_ID = "1234567890123456"
# Throwaway credentials of the local stack: meant to be shown and pasted into any OSS client.
LOCAL_ACCESS_KEY_ID = "LTAI-local-outpaint"
LOCAL_ACCESS_KEY_SECRET = "local-outpaint-secret"  # noqa: S105 - local-only, printed on purpose
LOCAL_API_KEY = "sk-local-outpaint"
LOCAL_TUNING = {"OUTPAINT_RETRY_BACKOFF_SECONDS": "1"}  # retries after 1 s instead of 30 s


class StackError(RuntimeError):
    """The stack cannot start as configured (the message says which setting to change)."""


@dataclass
class StackConfig:
    """Everything `outpaint local up` takes from its flags."""

    data_dir: Path = DEFAULT_DATA_DIR
    host: str = "127.0.0.1"
    oss_port: int = DEFAULT_OSS_PORT
    dashscope_port: int = DEFAULT_DASHSCOPE_PORT
    bucket: str = LOCAL_BUCKET
    region: str = "cn-beijing"
    s_yaml: Path | None = None
    runtime: Literal["inprocess", "custom"] = "inprocess"
    tick_every: float | None = None
    max_concurrency: int = 4
    retry_delay: float = 1.0
    task_seconds: tuple[float, float] = (2.0, 5.0)
    seed: int | None = None
    dashscope_url: str | None = None  # None: the emulator; else the real service (needs DASHSCOPE_API_KEY)
    # Where the real service downloads inputs from (a tunnel to the OSS emulator); None: the inputs are
    # handed over through DashScope's temporary storage instead (OUTPAINT_INPUT_HANDOVER).
    public_endpoint: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    log_level: str = "INFO"
    verbose: bool = False  # also the emulators' routine request lines


def find_s_yaml(explicit: Path | None = None) -> Path:
    """``explicit``, else ./s.yaml, else the checkout's s.yaml beside ``src/``."""
    candidates = [explicit] if explicit else [Path.cwd() / "s.yaml", Path(__file__).parents[3] / "s.yaml"]
    for candidate in candidates:
        if candidate is not None and candidate.is_file():
            return candidate.resolve()
    raise StackError(f"s.yaml not found (looked at {', '.join(map(str, candidates))}); pass --s-yaml PATH")


class LocalStack:
    """Start with :meth:`start` (or ``with``), stop with :meth:`stop`."""

    def __init__(self, config: StackConfig, sink: LogSink | None = None) -> None:
        self.config = config
        self.sink = sink or LogSink()
        self.s_yaml = find_s_yaml(config.s_yaml)
        self.identity = Identity(
            LOCAL_ACCOUNT_ID, config.region, LOCAL_ACCESS_KEY_ID, LOCAL_ACCESS_KEY_SECRET
        )
        self.oss: OssEmulator | None = None
        self.dashscope: DashScopeEmulator | None = None
        self.runner: FcRunner | None = None
        self.functions: dict[str, FunctionSpec] = {}

    # --- values shown to the user and given to the functions ------------------------------------
    @property
    def oss_endpoint(self) -> str:
        return self._require(self.oss).endpoint

    @property
    def dashscope_base_url(self) -> str:
        if self.config.dashscope_url:
            return self.config.dashscope_url
        return self._require(self.dashscope).base_url

    @property
    def api_key(self) -> str:
        if not self.config.dashscope_url:
            return LOCAL_API_KEY
        key = os.environ.get("DASHSCOPE_API_KEY")
        if not key:
            raise StackError("--dashscope real targets the real service: set DASHSCOPE_API_KEY")
        return key

    def function_environment(self, function: FunctionSpec) -> dict[str, str]:
        """s.yaml's environment of ``function``, overlaid by the stack's values, then ``--env``."""
        local = {
            "OUTPAINT_OSS_ENDPOINT": self.oss_endpoint,
            "OUTPAINT_OSS_PUBLIC_ENDPOINT": self.config.public_endpoint or self.oss_endpoint,
            "OUTPAINT_DASHSCOPE_BASE_URL": self.dashscope_base_url,
            "DASHSCOPE_API_KEY": self.api_key,
            **LOCAL_TUNING,
        }
        if self.dashscope is not None:
            local["OUTPAINT_ALLOWED_RESULT_HOSTS"] = self.dashscope.origin
        elif not self.config.public_endpoint:
            local["OUTPAINT_INPUT_HANDOVER"] = "temporary_storage"
        return {**function.environment, **local, **self.config.extra_env}

    def settings(self) -> Settings:
        """Settings of a client of this stack (the demo reads job records with them)."""
        from outpaint.config import load_settings

        environment = self.function_environment(next(iter(self.functions.values())))
        values = {
            k[len("OUTPAINT_") :].lower(): v for k, v in environment.items() if k.startswith("OUTPAINT_")
        }
        # What the stack sets itself only where --env did not set it (an override wins, never a clash).
        values.setdefault("access_key_id", LOCAL_ACCESS_KEY_ID)
        values.setdefault("access_key_secret", LOCAL_ACCESS_KEY_SECRET)
        values.setdefault("dashscope_api_key", environment["DASHSCOPE_API_KEY"])
        return load_settings(**values)

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self) -> LocalStack:
        config = self.config
        route_logging(self.sink, config.log_level, verbose=config.verbose)
        try:
            self.oss = self._start_oss()
            if not config.dashscope_url:
                self.dashscope = self._start_dashscope()
            self.functions = self._load_functions()
            self._void_previous_lease()
            self.runner = FcRunner(
                self.functions,
                self._invoker(),
                self.identity,
                self.sink,
                max_concurrency=config.max_concurrency,
                retry_delay=config.retry_delay,
                tick_every=config.tick_every,
                spool=Spool(config.data_dir / "fc" / "pending"),
            ).start()  # stops its invoker (the custom runtime's processes) if it fails
            self.runner.connect(self.oss)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_oss(self) -> OssEmulator:
        from outpaint.local.oss import DataDirInUse, OssEmulator

        config = self.config
        try:
            oss = OssEmulator(
                data_dir=config.data_dir / "oss",
                buckets=[config.bucket],
                access_key_id=LOCAL_ACCESS_KEY_ID,
                access_key_secret=LOCAL_ACCESS_KEY_SECRET,
                host=config.host,
                port=config.oss_port,
                region=config.region,
                account_id=LOCAL_ACCOUNT_ID,
                domains=self._domains(),
            )
        except DataDirInUse as exc:
            raise StackError(
                f"another local stack uses --data-dir {config.data_dir}: stop it, or pass another --data-dir"
            ) from exc
        except OSError as exc:
            raise StackError(f"cannot use --data-dir {config.data_dir}: {exc}") from exc
        try:
            return oss.start()
        except OSError as exc:
            oss.stop()  # releases the data directory
            raise StackError(
                f"cannot start the OSS emulator on {config.host}:{config.oss_port}: {exc.strerror or exc} "
                "(is the port taken? see --oss-port)"
            ) from exc
        except BaseException:
            oss.stop()
            raise

    def _start_dashscope(self) -> DashScopeEmulator:
        from outpaint.local.dashscope import DashScopeEmulator

        config = self.config
        try:
            return DashScopeEmulator(
                api_keys=[LOCAL_API_KEY],
                task_seconds=config.task_seconds,
                seed=config.seed,
                host=config.host,
                port=config.dashscope_port,
                data_dir=config.data_dir / "dashscope",
            ).start()
        except OSError as exc:
            raise StackError(
                f"cannot start the DashScope emulator on {config.host}:{config.dashscope_port}: "
                f"{exc.strerror or exc} (is the port taken? see --dashscope-port)"
            ) from exc

    def _void_previous_lease(self) -> None:
        """A poller of a previous run died with it: its lease would otherwise block the next tick until
        it expires (the function's whole timeout, by design)."""
        from outpaint.app import open_leases, static_credentials

        settings = self.settings()
        credentials = static_credentials(settings)
        if credentials is None:
            raise StackError("the local stack's own OSS keys are missing from its settings")
        open_leases(settings, credentials).break_()

    def _domains(self) -> tuple[str, ...]:
        """Host names under which the emulator answers virtual-host style (``<bucket>.<domain>``)."""
        public = urlsplit(self.config.public_endpoint or "").hostname
        return ("localhost", public) if public else ("localhost",)

    def _load_functions(self) -> dict[str, FunctionSpec]:
        render_env = {
            **os.environ,
            "OUTPAINT_BUCKET": self.config.bucket,
            "OUTPAINT_REGION": self.config.region,
            "DASHSCOPE_API_KEY": self.api_key,
        }
        functions = load_functions(self.s_yaml, render_env, {"AccountID": LOCAL_ACCOUNT_ID})
        if not functions:
            raise StackError(f"{self.s_yaml} defines no fc3 functions")
        return functions

    def _invoker(self) -> Invoker:
        code_root = self.s_yaml.parent
        if self.config.runtime == "custom":
            return CustomRuntimeInvoker(self.identity, code_root, self.function_environment, self.sink)
        return InProcessInvoker(self.identity, code_root, self.function_environment)

    def stop(self, grace: float = 5.0) -> None:
        """Stop the runner (running invocations get ``grace`` seconds), then the emulators."""
        if self.runner is not None:
            self.runner.stop(grace)
            self.runner = None
        if self.dashscope is not None:
            self.dashscope.stop()
            self.dashscope = None
        if self.oss is not None:
            self.oss.stop()
            self.oss = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    @staticmethod
    def _require(component: Any) -> Any:
        if component is None:
            raise StackError("the local stack is not running")
        return component
