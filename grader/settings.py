"""Every setting the grader reads, in one place, from the environment.

Settings are read where a run starts (the edges: the CLI's `main`, the HTTP app, the Python
client's first call, a flow run's entry) with `Settings.from_env()` and passed down; nothing
below the edges reads the environment. A flow called in-process by an edge runs with that edge's
settings (`settings_scope`); a flow started by a Prefect worker reads the worker's environment.
Secrets (the API key, passwords in DATABASE_URL) are never printed: use `Settings.describe()` to
show settings to a person.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

from grader.errors import ConfigError


def _env_int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _env_float(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


REVIEW_RULES = ("zero", "full")


def _review_rule(raw: str) -> tuple[str, ...]:
    """GRADER_REVIEW_RULE: "zero", "full" or "zero,full" (any criterion scored 0 or at full
    marks goes to a person); empty: no rule."""
    parts = tuple(p.strip() for p in raw.split(",") if p.strip())
    unknown = [p for p in parts if p not in REVIEW_RULES]
    if unknown:
        raise ConfigError(f"GRADER_REVIEW_RULE: unknown rule {unknown[0]!r} (zero, full)")
    return parts


# the first is the default: see grader/quality/recheck.py
RECHECK_MODES = ("extreme", "off", "always")


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    """One of `choices` (the first when unset)."""
    value = env.get(name) or choices[0]
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value[:40]!r}")
    return value


def _pause_after(raw: str | None) -> tuple[str, float] | None:
    """GRADER_TEST_PAUSE_AFTER=step:seconds: the one test hook in the production path. The crash
    tests kill a worker exactly between two grading steps; no model behaviour can hold a job
    there, so the flow sleeps after the named step (grader/context.py `pause_point`)."""
    if not raw:
        return None
    step, _, seconds = raw.partition(":")
    try:
        return step, float(seconds)
    except ValueError:
        raise ConfigError(f"GRADER_TEST_PAUSE_AFTER must be step:seconds, got {raw!r}") from None


def redact_url(url: str) -> str:
    """postgresql://user:secret@host/db -> postgresql://user:***@host/db; a password given as
    a query parameter or in a key=value connection string too."""
    url = re.sub(r"(://[^:/@]+):[^/]*@", r"\1:***@", url)
    # ?password=... in a URL, password=... or password='...' in a key=value connection string
    return re.sub(
        r"(?i)(\b(?:password|api[_-]?key|token)\s*=\s*)('(?:[^'\\]|\\.)*'|[^&\s]+)", r"\1***", url
    )


def redact_secret(secret: str | None) -> str:
    """An API key as 'set (sk-…1234)': enough to tell keys apart, not enough to use one."""
    if not secret:
        return "not set"
    return f"set ({secret[:3]}…{secret[-4:]})" if len(secret) >= 16 else "set"


@dataclass(frozen=True)
class Settings:
    # repr=False: a Settings printed by accident (a log line, a traceback) shows no secret
    database_url: str | None = field(repr=False)
    home: Path
    openai_api_key: str | None = field(repr=False)
    openai_base_url: str | None
    model: str
    request_timeout: float
    max_essay_chars: int
    lease_seconds: int
    max_attempts: int
    model_retries: int
    model_rpm: int
    retry_backoff_seconds: float
    worker_id: str
    prefect_api_url: str | None
    deployment: str
    test_pause_after: tuple[str, float] | None

    reports_dir: Path
    prices_file: str | None  # a TOML or JSON table of model prices (USD per million tokens)
    pgdata: Path  # data directory of the embedded PostgreSQL, used when DATABASE_URL is not set
    samples: int = 1  # gradings per essay, the median kept (a job's own setting wins)
    disagreement_points: int = 2  # samples further apart than this flag the grade for review
    anchor_tokens: int = 3000  # most prompt tokens (estimated) the rubric's anchor essays take
    review_rule: tuple[str, ...] = ()  # zero and/or full: such scores send a grade to review
    # where a batch's job goes after a retryable line error: the next batch, or graded now
    batch_retry: str = "batch"
    recheck: str = "extreme"  # off, extreme or always: see grader/quality/recheck.py
    recheck_share: float = 0.8  # extreme: a total at or above this share of the maximum
    recheck_points: int = 0  # a recheck this much lower goes to review; 0: 15% of the maximum

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings in `env` (default: this process's environment). Call it at an edge."""
        env = os.environ if env is None else env
        home = Path(env.get("GRADER_HOME") or Path.home() / ".grader").expanduser()
        return cls(
            database_url=env.get("DATABASE_URL") or None,
            home=home,
            openai_api_key=env.get("OPENAI_API_KEY") or None,
            openai_base_url=env.get("OPENAI_BASE_URL") or None,
            model=env.get("GRADER_MODEL") or "gpt-4o-mini",
            request_timeout=_env_float(env, "GRADER_REQUEST_TIMEOUT", 120.0, minimum=0.1),
            max_essay_chars=_env_int(env, "GRADER_MAX_ESSAY_CHARS", 100_000, minimum=1),
            lease_seconds=_env_int(env, "GRADER_LEASE_SECONDS", 300, minimum=5),
            max_attempts=_env_int(env, "GRADER_MAX_ATTEMPTS", 3, minimum=1),
            model_retries=_env_int(env, "GRADER_MODEL_RETRIES", 4),
            model_rpm=_env_int(env, "GRADER_MODEL_RPM", 0),
            retry_backoff_seconds=_env_float(env, "GRADER_RETRY_BACKOFF_SECONDS", 2.0),
            worker_id=env.get("GRADER_WORKER_ID") or f"{socket.gethostname()}:{os.getpid()}",
            prefect_api_url=env.get("PREFECT_API_URL") or None,
            # the deployment a new job is handed to when a Prefect API is configured; "" = none
            deployment=env.get("GRADER_DEPLOYMENT", "grade-submission/grade-submission"),
            test_pause_after=_pause_after(env.get("GRADER_TEST_PAUSE_AFTER")),
            reports_dir=Path(env.get("GRADER_REPORTS_DIR") or home / "reports").expanduser(),
            prices_file=env.get("GRADER_PRICES") or None,
            pgdata=Path(env.get("GRADER_PGDATA") or home / "pgdata").expanduser(),
            samples=_env_int(env, "GRADER_SAMPLES", 1, minimum=1),
            disagreement_points=_env_int(env, "GRADER_DISAGREEMENT_POINTS", 2),
            anchor_tokens=_env_int(env, "GRADER_ANCHOR_TOKENS", 3000),
            review_rule=_review_rule(env.get("GRADER_REVIEW_RULE", "")),
            batch_retry=_choice(env, "GRADER_BATCH_RETRY", ("batch", "synchronous")),
            recheck=_choice(env, "GRADER_RECHECK", RECHECK_MODES),
            recheck_share=_env_float(env, "GRADER_RECHECK_SHARE", 0.8),
            recheck_points=_env_int(env, "GRADER_RECHECK_POINTS", 0),
        )

    def require_model(self) -> None:
        """ConfigError unless there is a model to call: an API key, or a compatible endpoint."""
        if self.simulated:
            raise ConfigError(
                "OPENAI_API_KEY is not set: set it, or point OPENAI_BASE_URL at an "
                "OpenAI-compatible server (for example `grader simulate-llm`)"
            )

    @property
    def simulated(self) -> bool:
        """No model configured: the built-in simulator stands in (the demo, the local stack)."""
        return not self.openai_api_key and not self.openai_base_url

    @property
    def heartbeat_seconds(self) -> float:
        """How often a worker renews its lease: often enough that two missed beats still leave
        time, and that a cancelled job stops within seconds."""
        return min(self.lease_seconds / 3, 15.0)

    def describe(self) -> dict[str, str]:
        """The settings for a person to read: secrets redacted, never printed."""
        return {
            "database": redact_url(self.database_url)
            if self.database_url
            else f"embedded PostgreSQL in {self.pgdata}",
            "model": self.model,
            "model endpoint": redact_url(self.openai_base_url)
            if self.openai_base_url
            else "OpenAI",
            "api key": redact_secret(self.openai_api_key),
            "prefect api": redact_url(self.prefect_api_url) if self.prefect_api_url else "none",
            "request timeout": f"{self.request_timeout:g}s",
            "max essay chars": f"{self.max_essay_chars:,}",
            "lease": f"{self.lease_seconds}s, {self.max_attempts} attempts",
            "model retries": str(self.model_retries),
            "model rpm": str(self.model_rpm or "no limit"),
            "prices": self.prices_file or "built-in table",
            "recheck": self.recheck
            if self.recheck != "extreme"
            else f"extreme (from {self.recheck_share:.0%} of the maximum or any full marks)",
            "worker id": self.worker_id,
        }


_run_settings: ContextVar[Settings | None] = ContextVar("grader_run_settings", default=None)


@contextmanager
def settings_scope(settings: Settings) -> Iterator[Settings]:
    """Flows called in this block (in this thread or its tasks) run with `settings`: how an edge
    that runs a flow in-process passes its settings down without writing os.environ, and
    without putting secrets into flow parameters (Prefect stores and shows those)."""
    token = _run_settings.set(settings)
    try:
        yield settings
    finally:
        _run_settings.reset(token)


def settings_for_run() -> Settings:
    """A flow run's settings: its caller's (settings_scope) when called in-process, otherwise
    the environment of the worker that started it. Flows call this once, at their entry."""
    return _run_settings.get() or Settings.from_env()
