"""The one settings class: every knob comes from the environment with the prefix ``ONEWINDOW_``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _default_database_url() -> str:
    return f"sqlite:///{PROJECT_ROOT / 'var' / 'onewindow.db'}"


class Settings(BaseSettings):
    """Runtime configuration. Build it explicitly (``Settings()``); nothing reads it at import time."""

    model_config = SettingsConfigDict(env_prefix="ONEWINDOW_", extra="ignore")

    database_url: str = Field(default_factory=_default_database_url)
    """SQLAlchemy URL. Default: an SQLite file under ``var/``."""
    echo_sql: bool = False
    worker_interval_seconds: float = 5.0
    demo: bool = False
    """Load the bundled models and the demo licences at start-up."""
    district_code: str = "350102"
    """Administrative division code of the centre's district (in the credit codes of its departments)."""
    district_name: str = "福州市鼓楼区"
    """The district's name, before each department's name on the licences it issues."""

    @field_validator("district_code")
    @classmethod
    def _six_digits(cls, value: str) -> str:
        if len(value) != 6 or not value.isdigit():
            raise ValueError("district_code must be a 6-digit administrative division code")
        return value

    @field_validator("database_url")
    @classmethod
    def _normalise_url(cls, value: str) -> str:
        if value.startswith("postgres://"):
            value = "postgresql://" + value.removeprefix("postgres://")
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg2://" + value.removeprefix("postgresql://")
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
