"""The one settings class: every knob comes from the environment with the prefix ``ONEWINDOW_``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from licence.checkdigits import is_valid_division_code

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
    secret_key: SecretStr | None = None
    """Key of the session and token HMACs (at least 32 characters). Required to serve, unless ``demo``."""
    cookie_secure: bool = False
    """Send the session cookie only over HTTPS (set it behind TLS)."""
    session_hours: float = Field(default=8.0, gt=0, le=24 * 30)
    """A sign-in session ends this many hours after login."""
    upload_dir: Path = Field(default_factory=lambda: PROJECT_ROOT / "var" / "uploads")
    """Where uploaded material files are stored (under safe generated names)."""
    max_json_body_bytes: int = Field(default=2 * 1024 * 1024, gt=0)
    """Largest JSON command body the API reads (bytes); a larger one is refused (413) before it is read.
    Twice ``data_max_bytes`` (compact JSON) by default: room for indentation and the command's envelope."""
    max_upload_body_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    """Largest file upload body the API reads (bytes)."""
    max_document_body_bytes: int | None = Field(default=None, gt=0)
    """Largest BPMN/XML document body; unset: the hardened parser's document limit, never above it."""
    body_read_seconds: float = Field(default=60.0, gt=0)
    """Longest wait for a request body to arrive in full (seconds, from the application's first read); a
    slower one is refused (408 ``body_timeout``) and its connection closed."""

    # ---- data limits (engine/limits.py): every command's data is checked against them before any work
    data_max_bytes: int = Field(default=1_000_000, ge=1_000, le=100_000_000)
    """Largest data of one command (start data, task data, message payload, form), as compact JSON."""
    data_max_depth: int = Field(default=20, ge=2, le=200)
    """Deepest nesting of objects and arrays in a command's data."""
    data_max_string: int = Field(default=100_000, ge=100, le=10_000_000)
    """Longest string (in characters) in a command's data, keys included."""
    data_max_integer: int = Field(default=2**53 - 1, ge=1, le=2**63 - 1)
    """Largest magnitude of an integer in a command's data (default: the largest exact JSON integer)."""
    mi_max_branches: int = Field(default=200, ge=1, le=100_000)
    """Most branches one multi-instance task may open (the size of its collection, or its cardinality)."""
    step_max_tasks: int = Field(default=5_000, ge=10, le=1_000_000)
    """Most engine tasks (scripts, gateways, events) one command runs without a wait (workflow.budget)."""
    step_max_held: int = Field(default=20_000, ge=100, le=10_000_000)
    """Most tasks an instance may hold while one command runs."""
    step_max_seconds: float = Field(default=10.0, gt=0, le=3_600)
    """Most CPU seconds one command's engine steps may take (each expression has its own budget too)."""

    @field_validator("district_code")
    @classmethod
    def _six_digits(cls, value: str) -> str:
        if not is_valid_division_code(value):  # the credit codes of the district's departments carry it
            raise ValueError(
                "district_code must be a 6-digit administrative division code (GB/T 2260) of a province"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _normalise_url(cls, value: str) -> str:
        if value.startswith("postgres://"):
            value = "postgresql://" + value.removeprefix("postgres://")
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg2://" + value.removeprefix("postgresql://")
        return value

    @field_validator("secret_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("secret_key must have at least 32 characters")
        return value

    def require_secret(self) -> None:
        """Refuse to serve without a secret key, unless in demo mode (which makes one under ``var/``)."""
        if self.secret_key is None and not self.demo:
            raise SystemExit(
                "拒绝启动：未设置 ONEWINDOW_SECRET_KEY。非演示模式的服务需要至少 32 个字符的密钥"
                "（例如 `python -c 'import secrets; print(secrets.token_urlsafe(48))'` 生成）。"
                " ONEWINDOW_SECRET_KEY is not set: a server without demo mode needs a secret key of at least "
                "32 characters (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
            )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
