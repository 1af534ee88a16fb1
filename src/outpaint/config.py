"""One Settings object, read from the environment once per instance.

Every field maps to one environment variable, ``OUTPAINT_<FIELD>`` (a few also accept the
platform's own names, for example ``DASHSCOPE_API_KEY`` and FC's ``ALIBABA_CLOUD_*`` credentials).
The README's settings table is generated from the field descriptions and kept in sync by a test.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from outpaint.errors import ConfigError, PlanError
from outpaint.limits import AlertPolicy, PollerLimits
from outpaint.plan import GRAVITIES, PlanDefaults, check_default_ratio
from outpaint.results import FetchPolicy

ENV_PREFIX = "OUTPAINT_"


def _env(name: str, *platform_names: str) -> AliasChoices:
    """Accept OUTPAINT_<NAME> first, then the platform's conventional names."""
    return AliasChoices(ENV_PREFIX + name.upper(), *platform_names)


class Settings(BaseSettings):
    """Runtime settings of both functions, the CLI and the local stack."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        case_sensitive=False,
        extra="ignore",
        populate_by_name=True,
        frozen=True,
    )

    # --- bucket layout -------------------------------------------------------------------------
    bucket: str = Field(description="OSS bucket that receives uploads and holds outputs and job state.")
    region: str = Field(
        default="cn-beijing",
        description="Region of the bucket (OSS region id without the `oss-` prefix). V4 signatures use it.",
        validation_alias=_env("region", "FC_REGION"),
    )
    input_prefix: str = Field(default="inbox/", description="Uploads under this prefix are out-painted.")
    output_prefix: str = Field(default="outpainted/", description="Results are written under this prefix.")
    state_prefix: str = Field(
        default=".outpaint/", description="Job records, state markers and the poller lease live here."
    )

    # --- OSS access ----------------------------------------------------------------------------
    oss_endpoint: str | None = Field(
        default=None,
        description="Endpoint for the functions' own OSS I/O. Default: the region's internal endpoint "
        "`https://oss-<region>-internal.aliyuncs.com`.",
    )
    oss_public_endpoint: str | None = Field(
        default=None,
        description="Endpoint used to sign the input URL that DashScope downloads (must be reachable from "
        "the internet). Default: `https://oss-<region>.aliyuncs.com`.",
    )
    oss_signature_version: Literal["v1", "v4"] = Field(
        default="v4", description="OSS signature version for requests and signed URLs."
    )
    access_key_id: SecretStr | None = Field(
        default=None,
        description="Static OSS credentials (local stack, CLI). In FC the function role's STS "
        "credentials are used instead.",
        validation_alias=_env("access_key_id", "ALIBABA_CLOUD_ACCESS_KEY_ID"),
    )
    access_key_secret: SecretStr | None = Field(
        default=None,
        description="Secret of `access_key_id`.",
        validation_alias=_env("access_key_secret", "ALIBABA_CLOUD_ACCESS_KEY_SECRET"),
    )
    security_token: SecretStr | None = Field(
        default=None,
        description="STS security token that goes with temporary credentials.",
        validation_alias=_env("security_token", "ALIBABA_CLOUD_SECURITY_TOKEN"),
    )
    signed_url_seconds: int = Field(
        default=900,
        ge=60,
        le=86_400,
        description="Lifetime of the signed input URL handed to DashScope. Generated at submit time, so it "
        "only has to cover the service's download of the input.",
    )

    input_handover: Literal["signed_url", "temporary_storage"] = Field(
        default="signed_url",
        description="How DashScope gets the input: `signed_url`, a signed bucket URL (needs an endpoint "
        "DashScope can reach); `temporary_storage`, an upload to DashScope's temporary file storage sent "
        "as an `oss://` URL (files kept 48 h, not meant for production traffic; for the local stack "
        "against the real service).",
    )

    # --- DashScope -----------------------------------------------------------------------------
    dashscope_base_url: str = Field(
        default="https://dashscope.aliyuncs.com/api/v1",
        description="DashScope API base (Beijing; the model is offered there only).",
    )
    dashscope_api_key: SecretStr | None = Field(
        default=None,
        description="DashScope (Model Studio) API key. Never logged.",
        validation_alias=_env("dashscope_api_key", "DASHSCOPE_API_KEY"),
    )
    submit_qps: float = Field(
        default=2.0, gt=0, le=100, description="Task submissions per second allowed for the account."
    )
    max_concurrent_tasks: int = Field(
        default=5,
        ge=1,
        le=100,
        description="Tasks that may run at once for the account (current docs say 5, older ones 1).",
    )
    query_qps: float = Field(
        default=10.0,
        gt=0,
        le=100,
        description="Task queries per second this project uses (the account limit is 20; half is left "
        "for other users of the account).",
    )
    connect_timeout_seconds: float = Field(
        default=5.0, gt=0, description="Connect timeout for DashScope calls and result downloads."
    )
    read_timeout_seconds: float = Field(
        default=20.0, gt=0, description="Read timeout for DashScope calls and result downloads."
    )

    # --- poller ----------------------------------------------------------------------------------
    poll_interval_seconds: float = Field(
        default=0.5,
        gt=0,
        description="Time between two queries of a task that is due (first query: just before its usual "
        "running time). Never faster than `query_qps` allows for all tasks in flight.",
    )
    tick_budget_seconds: float = Field(
        default=58.0,
        gt=0,
        description="Longest time one tick works, even when the function timeout allows more: just under "
        "the timer's minute, so the next tick takes over with almost no gap.",
    )
    tick_safety_margin_seconds: float = Field(
        default=8.0,
        ge=0,
        description="A tick stops starting new work this long before the function's deadline.",
    )
    max_attempts: int = Field(
        default=3,
        ge=1,
        le=10,
        description="Submissions per job for transient task failures (the first one included).",
    )
    retry_backoff_seconds: float = Field(
        default=30.0, ge=0, description="Wait before resubmitting a job whose task failed transiently."
    )
    upload_polls: bool = Field(
        default=True,
        description="After queuing new jobs, on_upload takes the poller lease when it is free and follows "
        "the tasks until they finish or its timeout nears: results land seconds after the task ends "
        "instead of at the next timer tick.",
    )
    uncertain_submit_policy: Literal["resubmit", "fail"] = Field(
        default="resubmit",
        description="What to do after a submit whose outcome is unknown (sent, no answer): `resubmit` "
        "once more after `poll_interval_seconds` (recorded in the job; a job pays for at most "
        "`max_attempts` + 1 tasks), or `fail`.",
    )
    allowed_result_hosts: Annotated[list[str], NoDecode] = Field(
        default=["https://*.aliyuncs.com"],
        description="Origins (`scheme://host[:port]`, `*.` wildcard allowed) from which results may be "
        "downloaded; anything else is refused. Comma-separated or JSON list.",
    )
    max_result_bytes: int = Field(
        default=32 * 1024 * 1024, ge=1024, description="Largest result download accepted."
    )

    # --- plan defaults ---------------------------------------------------------------------------
    default_ratio: str | None = Field(
        default=None,
        description="Ratio used when an upload carries no expansion metadata (for example `16:9`). "
        "Empty: such uploads are skipped.",
    )
    default_gravity: str = Field(
        default="center", description="Where the original sits for computed ratios and sizes."
    )
    min_expansion_percent: float = Field(
        default=1.0,
        ge=0,
        le=50,
        description="An expansion adding less than this percent of the image's width and of its height is "
        "SKIPPED (`plan.negligible_expansion`): a task costs the same however little it adds. 0 makes "
        "every one.",
    )
    best_quality: bool = Field(default=False, description="API `best_quality` unless metadata overrides it.")
    add_watermark: bool = Field(
        default=True,
        description="API `add_watermark` (the AI-generated mark) unless metadata overrides it.",
    )
    limit_image_size: bool = Field(
        default=True, description="API `limit_image_size` unless metadata says otherwise."
    )

    # --- alerts (`outpaint status`) -------------------------------------------------------------------
    timer_period_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Period of the on-tick timer (s.yaml: every minute); `outpaint status` calls the poller "
        "stale after three periods without a run.",
    )
    alert_queue_age_seconds: float = Field(
        default=900.0,
        gt=0,
        description="`outpaint status` warns when the oldest queued job is older than this.",
    )
    alert_failure_rate: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description="`outpaint status` warns when more than this share of the jobs finished in the last hour "
        "failed (with at least 5 finished).",
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level of the JSON log lines."
    )

    # --- validation ------------------------------------------------------------------------------
    @field_validator("allowed_result_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("allowed_result_hosts")
    @classmethod
    def _check_origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
                raise ValueError(f"{origin!r} is not an origin like https://*.aliyuncs.com")
        return origins

    @field_validator("input_prefix", "output_prefix", "state_prefix")
    @classmethod
    def _check_prefix(cls, prefix: str) -> str:
        if prefix.startswith("/"):
            raise ValueError(f"{prefix!r} must not start with '/'")
        if prefix and not prefix.endswith("/"):
            raise ValueError(f"{prefix!r} must end with '/'")
        return prefix

    @field_validator("default_ratio")
    @classmethod
    def _check_default_ratio(cls, ratio: str | None) -> str | None:
        # A default the planner refuses would reject every upload without metadata: fail at start.
        if ratio is not None:
            try:
                check_default_ratio(ratio)
            except PlanError as exc:
                raise ValueError(exc.message) from None
        return ratio

    @field_validator("default_gravity")
    @classmethod
    def _check_gravity(cls, gravity: str) -> str:
        if gravity.lower() not in GRAVITIES:
            raise ValueError(f"{gravity!r} is not one of {', '.join(GRAVITIES)}")
        return gravity.lower()

    @model_validator(mode="after")
    def _prefixes_disjoint(self) -> Settings:
        named = {
            "input_prefix": self.input_prefix,
            "output_prefix": self.output_prefix,
            "state_prefix": self.state_prefix,
        }
        for name_a, a in named.items():
            for name_b, b in named.items():
                if name_a < name_b and (a.startswith(b) or b.startswith(a)):
                    raise ValueError(f"{name_a} {a!r} and {name_b} {b!r} overlap; they must be disjoint")
        return self

    # --- derived ---------------------------------------------------------------------------------
    @property
    def internal_endpoint(self) -> str:
        """Endpoint for the functions' own OSS I/O."""
        return self.oss_endpoint or f"https://oss-{self.region}-internal.aliyuncs.com"

    @property
    def public_endpoint(self) -> str:
        """Endpoint used when signing URLs that leave the region's network."""
        return self.oss_public_endpoint or f"https://oss-{self.region}.aliyuncs.com"

    def result_origin_allowed(self, url: str) -> bool:
        """True when ``url``'s scheme, host and port match one of ``allowed_result_hosts``."""
        return self.fetch_policy().origin_allowed(url)

    # --- the narrow parts each collaborator uses ---------------------------------------------------
    def plan_defaults(self) -> PlanDefaults:
        """What the planner uses for an upload without metadata of its own."""
        return PlanDefaults(
            ratio=self.default_ratio,
            gravity=self.default_gravity,
            best_quality=self.best_quality,
            add_watermark=self.add_watermark,
            limit_image_size=self.limit_image_size,
            min_expansion_percent=self.min_expansion_percent,
        )

    def poller_limits(self) -> PollerLimits:
        """Quota, pacing and retry limits of the poller."""
        return PollerLimits(
            submit_qps=self.submit_qps,
            max_concurrent_tasks=self.max_concurrent_tasks,
            query_qps=self.query_qps,
            poll_interval_seconds=self.poll_interval_seconds,
            max_attempts=self.max_attempts,
            retry_backoff_seconds=self.retry_backoff_seconds,
            uncertain_submit_policy=self.uncertain_submit_policy,
            signed_url_seconds=self.signed_url_seconds,
            connect_timeout_seconds=self.connect_timeout_seconds,
            read_timeout_seconds=self.read_timeout_seconds,
        )

    def alert_policy(self) -> AlertPolicy:
        """Thresholds of the operators' alerts."""
        return AlertPolicy(
            timer_period_seconds=self.timer_period_seconds,
            queue_age_seconds=self.alert_queue_age_seconds,
            failure_rate=self.alert_failure_rate,
        )

    def fetch_policy(self) -> FetchPolicy:
        """Where results may be downloaded from, and how much of them."""
        return FetchPolicy(
            allowed_result_hosts=tuple(self.allowed_result_hosts),
            max_result_bytes=self.max_result_bytes,
            connect_timeout_seconds=self.connect_timeout_seconds,
            read_timeout_seconds=self.read_timeout_seconds,
        )


def load_settings(**overrides: object) -> Settings:
    """Build Settings from the environment (plus ``overrides``); raise ConfigError listing every bad field."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = ".".join(str(part) for part in err["loc"]) or "settings"
            env_name = ENV_PREFIX + field.upper() if err["loc"] else ""
            where = f"{field} ({env_name})" if env_name else field
            lines.append(f"  {where}: {err['msg']}")
        raise ConfigError("invalid settings:\n" + "\n".join(lines)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The instance-wide Settings, read once (FC reuses warm instances)."""
    return load_settings()


def settings_table() -> str:
    """The README's settings table (Markdown), generated from the field descriptions."""
    rows = ["| Environment variable | Default | Meaning |", "|---|---|---|"]
    for name, info in Settings.model_fields.items():
        env_names = [ENV_PREFIX + name.upper()]
        if isinstance(info.validation_alias, AliasChoices):
            env_names = [str(choice) for choice in info.validation_alias.choices]
        default = None if info.is_required() else info.default
        if isinstance(default, list):
            default = ",".join(default)
        shown = "**required**" if info.is_required() else "*(unset)*" if default is None else f"`{default}`"
        rows.append(f"| {' / '.join(f'`{n}`' for n in env_names)} | {shown} | {info.description} |")
    return "\n".join(rows)
