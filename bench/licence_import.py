"""Benchmark: bulk import of paper-era licences (``onewindow licence import``).

    python -m bench.licence_import [--rows 100000]

Writes a CSV of fictional licences (check digits valid), imports it into a fresh SQLite database in one
transaction and prints rows, seconds and rows per second. Target: 100,000 rows well under a minute.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from engine.persistence.database import make_engine
from engine.persistence.schema import upgrade
from licence.demo import make_demo_rows
from licence.importer import import_file, write_csv


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.licence_import", description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "paper.csv"
        write_csv(make_demo_rows(args.rows), path)
        engine = make_engine(f"sqlite:///{tmp}/import.db")
        upgrade(engine)
        started, cpu = time.perf_counter(), time.process_time()
        with engine.begin() as conn:
            report = import_file(conn, path)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        engine.dispose()
    print(
        f"rows {report.total_rows}, accepted {report.accepted}, rejected {report.rejected_rows}, "
        f"notes {report.note_count} (stored expired)"
    )
    rate = report.total_rows / elapsed
    print(f"seconds {elapsed:.1f}, rows/s {rate:.0f} (target: 100,000 rows well under 60 s)")
    print(f"CPU seconds {cpu:.1f} (the wall time above also counts waiting for a busy machine)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
