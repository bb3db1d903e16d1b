"""Studio settings from ``MUSELAB_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


class Settings(BaseSettings):
    """Where the studio keeps its state and how it listens. Every field reads ``MUSELAB_<NAME>``
    (e.g. ``MUSELAB_PORT=8080``, ``MUSELAB_TOKEN=...``, ``MUSELAB_RUNS=runs``)."""

    model_config = SettingsConfigDict(env_prefix="MUSELAB_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    token: str | None = None  # required for any host other than localhost
    db: Path | None = None  # default: <data home>/studio.sqlite3
    media: Path | None = None  # default: <data home>/studio/media
    runs: Path = Path("runs")  # training runs (shared with `muselab train`)
    models: Path = Path("models")  # shipped models (models/<name>/model.safetensors)
    max_upload_mb: int = Field(default=64, ge=1, le=4096)
    max_upload_files: int = Field(default=20000, ge=1)
    rate_per_min: int = Field(default=600, ge=1)  # changes (POST/PUT/DELETE) per client
    rate_burst: int = Field(default=120, ge=1)  # ... of which this many at once
    poll_s: float = Field(default=0.5, gt=0, le=10)  # worker queue poll and event push interval
    cache_models: int = Field(default=4, ge=1, le=64)  # loaded pipelines kept in memory

    @field_validator("token")
    @classmethod
    def _token_not_blank(cls, v: str | None) -> str | None:
        return v or None

    def db_path(self) -> Path:
        from muselab.store.db import default_db_path

        return self.db or default_db_path()

    def media_dir(self) -> Path:
        from muselab.io import data_home

        return self.media or data_home() / "studio" / "media"

    def uploads_dir(self) -> Path:
        return self.media_dir().parent / "datasets"

    def check_exposure(self) -> None:
        """Binding anything but localhost needs a token (the API can train and write files)."""
        from muselab.errors import ConfigError

        if self.host not in LOCAL_HOSTS and not self.token:
            raise ConfigError(f"--host {self.host}: serving beyond this machine needs a token; "
                              "pass --token SECRET (or MUSELAB_TOKEN) or bind 127.0.0.1")

    def worker_env(self) -> dict[str, str]:
        """``MUSELAB_*`` variables that give a worker process these same settings."""
        env = {"MUSELAB_DB": str(self.db_path().resolve()),
               "MUSELAB_MEDIA": str(self.media_dir().resolve()),
               "MUSELAB_RUNS": str(self.runs.resolve()),
               "MUSELAB_MODELS": str(self.models.resolve()),
               "MUSELAB_POLL_S": str(self.poll_s)}
        return env

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Settings from the environment plus ``overrides``; a :class:`ConfigError` naming
        the ``MUSELAB_*`` variable or option that is wrong."""
        from muselab.errors import ConfigError

        try:
            return cls(**overrides)
        except ValidationError as exc:
            e = exc.errors()[0]
            name = str(e["loc"][0]) if e["loc"] else "?"
            where = f"--{name}" if name in overrides else f"MUSELAB_{name.upper()}"
            raise ConfigError(f"{where}: {e['msg']}") from None

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024
