"""Every benchmark module imports (what it uses of the engine still exists) and answers ``--help``, without
running: the benchmarks themselves are timed by hand (README, «Benchmark»), never by the tests."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import pytest

import bench

MODULES = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if not m.name.startswith("_"))
COMMANDS = ["bench", "bench.inbox_scale", "bench.figures_scale", "bench.http_api", "bench.rework"]


@pytest.mark.parametrize("name", MODULES)
def test_every_benchmark_module_imports(name: str) -> None:
    importlib.import_module(f"bench.{name}")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_benchmark_command_answers_help(command: str) -> None:
    argv = [sys.executable, "-m", command, "--help"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "usage" in done.stdout.lower()
