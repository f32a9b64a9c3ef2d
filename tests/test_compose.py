"""docker-compose.yml and the Dockerfile, read as files (there is no Docker engine here): every command is
a real ``onewindow`` command of the real parser, every ``ONEWINDOW_*`` variable a real setting, secrets
come from the environment, and the API and the worker wait for the migration to have succeeded."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from api import cli
from engine.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
IMAGE_ROOT = "/app"  # the Dockerfile's WORKDIR: the repository's files are copied there

SECRET_STAND_IN = "s" * 48  # what a required ${VAR:?...} stands for here (a valid secret key)
VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|:\?)(?P<arg>[^}]*))?\}")


def interpolate(value: Any) -> str:
    """Compose's interpolation with nothing set on the host: ``${V:-default}`` is its default, ``${V:?msg}``
    a stand-in (compose refuses to start without it). A bare ``${V}`` would silently be empty: refused."""

    def one(match: re.Match[str]) -> str:
        if match["op"] == ":-":
            return match["arg"]
        if match["op"] == ":?":
            return SECRET_STAND_IN
        raise AssertionError(f"${{{match['name']}}} has neither a default nor ':?' (empty when unset)")

    return VARIABLE.sub(one, str(value))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def ours(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The services that run the onewindow image (built from this repository's Dockerfile)."""
    return {name: svc for name, svc in services.items() if svc.get("build") is not None}


def parse_onewindow(command: list[str]) -> argparse.Namespace:
    """The command as the real ``onewindow`` parser reads it (an unknown command or option fails)."""
    assert isinstance(command, list) and command, f"command must be an exec list: {command!r}"
    assert command[0] == "onewindow", f"not a onewindow command: {command!r}"
    try:
        return cli.build_parser().parse_args([interpolate(part) for part in command[1:]])
    except SystemExit as exc:  # argparse's way of refusing
        raise AssertionError(f"onewindow refuses {command!r} (exit {exc.code})") from None


def environment(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment") or {}
    assert isinstance(env, dict), "environment must be a mapping"
    return {str(k): interpolate(v) for k, v in env.items()}


def test_the_services_are_postgres_migration_api_and_worker(services) -> None:
    assert {"db", "migrate", "api", "worker"} <= set(services)
    assert services["db"]["image"].startswith("postgres:")
    assert set(ours(services)) >= {"migrate", "api", "worker"}
    assert all(svc["build"] == "." for svc in ours(services).values())
    assert (ROOT / "Dockerfile").is_file()


def test_every_command_is_a_real_onewindow_command(services) -> None:
    assert {name for name, svc in services.items() if "command" in svc} == set(ours(services))
    commands = {name: parse_onewindow(svc["command"]) for name, svc in ours(services).items()}
    assert all(svc["init"] is True for svc in ours(services).values())  # SIGTERM reaches onewindow
    assert commands["migrate"].func is cli.cmd_db_upgrade and commands["migrate"].revision == "head"

    api = commands["api"]
    assert api.func is cli.cmd_serve
    assert api.host == "0.0.0.0" and api.workers >= 2  # several processes, reachable from outside

    worker = commands["worker"]
    assert worker.func is cli.cmd_worker and not worker.once  # runs until stopped


def test_a_bpmn_deployed_by_compose_is_a_file_of_the_image(services) -> None:
    for name, svc in ours(services).items():
        args = parse_onewindow(svc["command"])
        if args.func is not cli.cmd_deploy:
            continue
        assert svc.get("profiles"), f"{name}: a deploy on every `up` would redeploy over newer versions"
        for path in args.files:
            assert path.startswith(IMAGE_ROOT + "/"), path
            assert (ROOT / path.removeprefix(IMAGE_ROOT + "/")).is_file(), path


def test_every_onewindow_variable_is_a_setting(services) -> None:
    fields = set(Settings.model_fields)
    seen = 0
    for name, svc in services.items():
        for key in svc.get("environment") or {}:
            if key.startswith("ONEWINDOW_"):
                seen += 1
                assert key.removeprefix("ONEWINDOW_").lower() in fields, f"{name}: {key} is not a setting"
    assert seen


def test_the_settings_of_the_services_are_valid_and_not_demo(services, monkeypatch) -> None:
    for name, svc in ours(services).items():
        for key in list(os.environ):
            if key.startswith("ONEWINDOW_"):
                monkeypatch.delenv(key)
        for key, value in environment(svc).items():
            monkeypatch.setenv(key, value)
        settings = Settings()  # every value as compose passes it, defaults and stand-ins filled in
        assert not settings.demo, f"{name}: demo mode (demo accounts) in production"
        settings.require_secret()  # a server of this configuration starts
        assert settings.secret_key is not None
        assert settings.database_url.startswith("postgresql+psycopg2://onewindow:")
        assert settings.database_url.endswith("@db:5432/onewindow")
        assert settings.cookie_secure, f"{name}: the session cookie must be Secure by default"


def test_secrets_come_from_the_environment(services) -> None:
    required = re.compile(r"^\$\{[A-Z_]+:\?[^}]+\}$")
    for name, svc in services.items():
        for key, value in (svc.get("environment") or {}).items():
            if "SECRET" in key or "PASSWORD" in key:
                assert required.match(str(value)), f"{name}: {key} must be ${{VAR:?...}}, not a value"
        env = svc.get("environment") or {}
        if "ONEWINDOW_DATABASE_URL" in env:  # the password in the URL is the one given to PostgreSQL
            assert "${POSTGRES_PASSWORD:?" in env["ONEWINDOW_DATABASE_URL"]
    assert required.match(services["api"]["environment"]["ONEWINDOW_SECRET_KEY"])
    assert services["db"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")


def test_api_and_worker_wait_for_a_successful_migration(services) -> None:
    migrate = services["migrate"]
    assert migrate["depends_on"]["db"]["condition"] == "service_healthy"
    assert migrate.get("restart", "no") == "no"  # one-shot: not restarted after it has done its work
    for name in ("api", "worker"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["db"]["condition"] == "service_healthy", name


def test_health_checks_and_replicas(compose, services) -> None:
    db_check = " ".join(services["db"]["healthcheck"]["test"])
    assert "pg_isready" in db_check and "-U onewindow" in db_check
    api = services["api"]
    api_check = " ".join(api["healthcheck"]["test"])
    port = parse_onewindow(api["command"]).port
    assert f"http://127.0.0.1:{port}/healthz" in api_check
    assert any(interpolate(p).endswith(f":{port}") for p in api["ports"])
    assert int(interpolate(services["worker"]["deploy"]["replicas"])) >= 2

    volume, mount = services["db"]["volumes"][0].split(":")
    assert mount == "/var/lib/postgresql/data" and volume in compose["volumes"]
    upload_dir = services["api"]["environment"]["ONEWINDOW_UPLOAD_DIR"]
    assert any(v.split(":")[1] == upload_dir for v in api["volumes"])


def test_the_dockerfile_copies_real_files_and_runs_onewindow() -> None:
    lines = [line.strip() for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()]
    assert any(line == f"WORKDIR {IMAGE_ROOT}" for line in lines)
    # COPY --from=<stage> copies from an earlier build stage (the npm packages), not from the repository
    copies = [shlex.split(line)[1:-1] for line in lines if line.startswith("COPY ") and "--from=" not in line]
    assert copies
    for sources in copies:
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such file"
    copied = {Path(s).parts[0] for sources in copies for s in sources}
    # every package pyproject installs, and the models deploy-models names
    assert {"pyproject.toml", "api", "engine", "forms", "licence", "processes"} <= copied
    assert any(line.startswith(("RUN pip install .", "RUN pip install -e .")) for line in lines)
    # the pages' front-end packages come from npm in a build stage, into the path the pages serve them from
    assert any(line.startswith("RUN npm ci") for line in lines)
    npm_copy = [line for line in lines if line.startswith("COPY --from=")]
    assert any(line.endswith("./api/pages/node_modules") for line in npm_copy)
    assert any(line.startswith("USER ") and "root" not in line for line in lines)
    cmd = next(line for line in lines if line.startswith("CMD "))
    assert parse_onewindow(json.loads(cmd.removeprefix("CMD "))).func is cli.cmd_serve
