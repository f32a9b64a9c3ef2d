"""Size limits at the door of ``licence import`` (issue 9): the file is read as a stream, and every hostile
shape of a row is a per-row error in the report (or the whole file is refused, without quoting it), never a
traceback; memory stays bounded whatever the file holds."""

from __future__ import annotations

import argparse
import csv
import json
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from engine.errors import InvalidInput
from licence.cli import register
from licence.demo import make_demo_rows
from licence.import_reader import ReadLimits
from licence.importer import ImportReport, import_file, write_csv
from licence.tables import licences

BIG = 200 * 2**20  # the 200 MB line of the issue, written lazily in 1 MB pieces
MEMORY_BOUND = 24 * 2**20  # what one import may allocate at its peak, whatever the file size
MARKER = "SECRET-CONTENT-7f3a"  # must never come back in a message


def flat(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k != "face"}
    out.update({f"face.{k}": v for k, v in row["face"].items()})
    return out


def good_rows(n: int = 2, seed: int = 61) -> list[dict[str, Any]]:
    rows = make_demo_rows(10 * n + 10, seed=seed)  # every tenth row is a business licence
    return [r for r in rows if r["type_code"] == "business_licence"][:n]


def count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(licences)).scalar_one())


def problems(report: ImportReport) -> set[tuple[int, str, str]]:
    return {(e.row_number, e.field, e.code) for e in report.rejected}


def import_bounded(engine: Engine, path: Path, **kwargs: Any) -> tuple[ImportReport, int]:
    """Import ``path`` and return the report with the peak of memory allocated meanwhile."""
    tracemalloc.start()
    try:
        with engine.begin() as conn:
            report = import_file(conn, path, **kwargs)
        return report, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def write_lazily(path: Path, pieces: Iterator[bytes]) -> Path:
    with path.open("wb") as fh:
        for piece in pieces:
            fh.write(piece)
    return path


def csv_line(row: dict[str, Any], columns: list[str]) -> bytes:
    import io

    buf = io.StringIO()
    csv.writer(buf).writerow([row.get(c, "") for c in columns])
    return buf.getvalue().encode("utf-8")


def big_value(size: int = BIG) -> Iterator[bytes]:
    piece = b"x" * 2**20
    for _ in range(size // len(piece)):
        yield piece


@pytest.fixture(scope="module")
def huge_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One CSV, one JSON lines and one JSON array file, each: a good row, a 200 MB row, a good row."""
    where = tmp_path_factory.mktemp("huge")
    first, last = (flat(r) for r in good_rows())
    columns = list(first)

    def csv_pieces() -> Iterator[bytes]:
        yield csv_line(dict(zip(columns, columns, strict=True)), columns)
        yield csv_line(first, columns)
        yield b'"'
        yield from big_value()
        yield b'",x\n'
        yield csv_line(last, columns)

    def jsonl_pieces() -> Iterator[bytes]:
        yield json.dumps(first, ensure_ascii=False).encode() + b"\n"
        yield b'{"holder_name": "'
        yield from big_value()
        yield b'"}\n'
        yield json.dumps(last, ensure_ascii=False).encode() + b"\n"

    def array_pieces() -> Iterator[bytes]:
        yield b"[" + json.dumps(first, ensure_ascii=False).encode() + b",\n"
        yield b'{"holder_name": "'
        yield from big_value()
        yield b'"},\n'
        yield json.dumps(last, ensure_ascii=False).encode() + b"]\n"

    return {
        "csv": write_lazily(where / "huge.csv", csv_pieces()),
        "jsonl": write_lazily(where / "huge.jsonl", jsonl_pieces()),
        "json": write_lazily(where / "huge.json", array_pieces()),
    }


@pytest.mark.parametrize("kind", ["csv", "jsonl", "json"])
def test_a_200_mb_row_is_a_row_error_and_memory_stays_bounded(db: Engine, huge_files, kind: str) -> None:
    path = huge_files[kind]
    assert path.stat().st_size > BIG
    report, peak = import_bounded(db, path, format="csv" if kind == "csv" else "json")
    assert problems(report) == {(2, "", "row_too_large")}
    assert report.accepted == 2 and report.total_rows == 3 and count(db) == 2
    assert peak < MEMORY_BOUND, f"peak {peak / 2**20:.1f} MB for a {path.stat().st_size / 2**20:.0f} MB file"


@pytest.mark.parametrize("kind", ["csv", "jsonl", "json"])
def test_the_row_limit_is_configurable(db: Engine, tmp_path: Path, kind: str) -> None:
    """The same rule with a 4 KB limit: a 10 KB row is skipped, the rows around it are imported."""
    first, last = (flat(r) for r in good_rows())
    middle = dict(first, licence_number="X1", holder_name="x" * 10_000)
    path = tmp_path / f"rows.{kind}"
    if kind == "csv":
        write_csv([first, middle, last], path)
    elif kind == "jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in (first, middle, last)))
    else:
        path.write_text(json.dumps([first, middle, last], ensure_ascii=False))
    limits = ReadLimits(max_row_bytes=4096, chunk_bytes=1024)
    with db.begin() as conn:
        report = import_file(conn, path, "csv" if kind == "csv" else "json", limits=limits)
    assert problems(report) == {(2, "", "row_too_large")}
    assert report.accepted == 2


def test_a_cell_over_the_csv_field_limit_and_one_over_the_cell_limit_are_row_errors(
    db: Engine, tmp_path: Path
) -> None:
    rows = [flat(r) for r in good_rows(4)]
    rows[1]["face.business_scope"] = "经" * (csv.field_size_limit() + 10)  # csv refuses to hold it
    rows[2]["face.business_scope"] = "经" * 5000  # fits in csv, over our 4,000 characters
    path = tmp_path / "cells.csv"
    write_csv(rows, path)
    with db.begin() as conn:
        report = import_file(conn, path)
    assert problems(report) == {(2, "", "cell_too_large"), (3, "face.business_scope", "too_long")}
    assert report.accepted == 2


def five_thousand_digits() -> str:
    return "9" * 5000


@pytest.mark.parametrize("kind", ["csv", "jsonl", "json"])
def test_a_number_of_5000_digits_is_a_row_error(db: Engine, tmp_path: Path, kind: str) -> None:
    first, bad, last = (flat(r) for r in good_rows(3))
    path = tmp_path / f"digits.{kind}"
    if kind == "csv":
        bad["face.registered_capital"] = five_thousand_digits()
        write_csv([first, bad, last], path)
        expected = {(2, "face.registered_capital", "too_long")}  # over the cell limit before it is a number
    else:
        bad["face.registered_capital"] = "@@NUMBER@@"
        texts = [json.dumps(r, ensure_ascii=False) for r in (first, bad, last)]
        texts[1] = texts[1].replace('"@@NUMBER@@"', five_thousand_digits())
        body = "\n".join(texts) + "\n" if kind == "jsonl" else "[" + ",\n".join(texts) + "]"
        path.write_text(body, encoding="utf-8")
        expected = {(2, "", "bad_number")}
    with db.begin() as conn:
        report = import_file(conn, path, "csv" if kind == "csv" else "json")
    assert problems(report) == expected
    assert report.accepted == 2 and count(db) == 2


def test_huge_magnitudes_written_briefly_are_refused_before_conversion(db: Engine) -> None:
    from licence.importer import import_rows

    rows = []
    for i, value in enumerate(["1e999999999", "1e15", 10**20, 1e300, "-1e999999"], start=1):
        row = good_rows(1, seed=70 + i)[0]
        row["face"]["registered_capital"] = value
        rows.append((i, row))
    with db.begin() as conn:
        report = import_rows(conn, rows)
    assert {(e.row_number, e.code) for e in report.rejected} == {(n, "bad_value") for n in range(1, 6)}


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("kind", ["jsonl", "json"])
@pytest.mark.parametrize("where", ["element", "value"])
def test_json_nested_100000_deep_is_a_row_error(db: Engine, tmp_path: Path, kind: str, where: str) -> None:
    first, last = (json.dumps(flat(r), ensure_ascii=False) for r in good_rows())
    deep = nested(100_000) if where == "element" else '{"holder_name": ' + nested(100_000) + "}"
    texts = [first, deep, last]
    path = tmp_path / f"deep.{kind}"
    path.write_text("\n".join(texts) + "\n" if kind == "jsonl" else "[" + ",".join(texts) + "]")
    with db.begin() as conn:
        report = import_file(conn, path, "json")
    assert problems(report) == {(2, "", "too_deep")}
    assert report.accepted == 2


def test_an_unclosed_deep_array_ends_the_report_without_a_traceback(db: Engine, tmp_path: Path) -> None:
    first = json.dumps(flat(good_rows(1)[0]), ensure_ascii=False)
    path = tmp_path / "unclosed.json"
    path.write_text("[" + first + "," + "[" * 100_000)
    with db.begin() as conn:
        report = import_file(conn, path, "json")
    assert report.accepted == 1
    assert {e.code for e in report.rejected} <= {"too_deep", "bad_format", "truncated_file"}
    assert report.rejected and all(e.row_number >= 2 for e in report.rejected)


BAD_CHARACTERS = {"nul": "\x00", "lone surrogate": "\ud800", "control": "\x1b"}
CHARACTER_CASES = [  # UTF-8 cannot carry a lone surrogate into a CSV: see the bad-encoding test below
    (kind, name)
    for kind in ("csv", "jsonl", "json")
    for name in BAD_CHARACTERS
    if (kind, name) != ("csv", "lone surrogate")
]


@pytest.mark.parametrize(("kind", "name"), CHARACTER_CASES)
@pytest.mark.parametrize("column", ["holder_name", "face.address"])
def test_a_nul_or_lone_surrogate_in_a_value_is_a_row_error(
    db: Engine, tmp_path: Path, kind: str, name: str, column: str
) -> None:
    first, bad, last = (flat(r) for r in good_rows(3))
    bad[column] = f"示例{BAD_CHARACTERS[name]}名称"
    if column == "holder_name":
        bad["face.name"] = bad[column]
    path = tmp_path / f"chars.{kind}"
    if kind == "csv":
        write_csv([first, bad, last], path)
    else:
        texts = [json.dumps(r) for r in (first, bad, last)]  # ASCII escapes: \u0000, \ud800
        path.write_text("\n".join(texts) if kind == "jsonl" else "[" + ",".join(texts) + "]")
    with db.begin() as conn:
        report = import_file(conn, path, "csv" if kind == "csv" else "json")
    assert (2, column, "bad_character") in problems(report)
    assert {e.row_number for e in report.rejected} == {2}
    assert report.accepted == 2 and count(db) == 2


def test_bytes_that_are_not_utf8_past_the_start_are_a_row_error(db: Engine, tmp_path: Path) -> None:
    """Past the first chunk (where a non-UTF-8 file is refused as a whole), a bad line is one bad row:
    here an encoded surrogate (ED A0 80), which a UTF-8 decoder refuses."""
    rows = [flat(r) for r in good_rows(40)]
    path = tmp_path / "late.csv"
    write_csv(rows, path)
    lines = path.read_bytes().split(b"\n")
    assert sum(len(line) + 1 for line in lines[:30]) > 4096  # row 30 lies past the inspected start
    lines[30] = lines[30].replace(b"\xe7\xa4\xba", b"\xed\xa0\x80", 1)  # one 示 becomes a surrogate
    path.write_bytes(b"\n".join(lines))
    with db.begin() as conn:
        report = import_file(conn, path, limits=ReadLimits(chunk_bytes=4096))
    assert problems(report) == {(30, "", "bad_encoding")}
    assert report.accepted == 39


NOT_LICENCE_FILES: dict[str, tuple[Callable[[], bytes], str]] = {
    "png": (lambda: b"\x89PNG\r\n\x1a\n" + MARKER.encode() + bytes(range(256)) * 10, "not_licence_file"),
    "xlsx": (lambda: b"PK\x03\x04" + MARKER.encode() + b"\x00" * 100, "not_licence_file"),
    "binary": (lambda: MARKER.encode() + b"\x00\x01\x02\xff" * 100, "not_licence_file"),
    "random bytes": (lambda: bytes((i * 73 + 11) % 256 for i in range(4096)) + MARKER.encode(), "bad_file"),
    "html": (lambda: f"<!DOCTYPE html><html><body>{MARKER}</body></html>".encode(), "not_licence_file"),
    "wrong header": (lambda: f"name,age,{MARKER}\nAlice,3,x\n".encode(), "not_licence_file"),
    "one long line": (lambda: (MARKER * 200_000).encode(), "not_licence_file"),
    "utf-16": (lambda: "type_code,holder_id\n".encode("utf-16"), "not_licence_file"),
}


@pytest.mark.parametrize("fmt", ["csv", "json"])
@pytest.mark.parametrize("name", list(NOT_LICENCE_FILES))
def test_a_file_that_is_not_a_licence_file_is_refused_without_echoing_it(
    db: Engine, tmp_path: Path, name: str, fmt: str
) -> None:
    make, code = NOT_LICENCE_FILES[name]
    path = tmp_path / f"upload.{fmt}"
    path.write_bytes(make())
    with db.begin() as conn, pytest.raises(InvalidInput) as info:
        import_file(conn, path, fmt)  # type: ignore[arg-type]
    if not (fmt == "json" and name == "wrong header"):
        assert info.value.code == code
    else:
        assert info.value.code == "not_licence_file"
    shown = str(info.value) + repr(info.value.detail)
    assert MARKER not in shown and MARKER[:8] not in shown
    assert count(db) == 0


def test_the_cli_refuses_a_non_licence_file_with_exit_2_and_no_content(
    db: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser(prog="onewindow")
    register(parser.add_subparsers(dest="command"))
    for name, (make, _) in NOT_LICENCE_FILES.items():
        path = tmp_path / f"{name}.csv"
        path.write_bytes(make())
        args = parser.parse_args(["licence", "import", str(path), "--no-progress"])
        assert args.handler(args, lambda: db) == 2, name
        captured = capsys.readouterr()
        assert MARKER[:8] not in captured.out + captured.err and "Traceback" not in captured.err


def test_a_json_array_read_in_chunks_of_any_size_gives_exactly_its_elements(tmp_path: Path) -> None:
    """The bounded array reader against ``json.loads``: strings full of brackets, commas, quotes and
    escapes, numbers and literals cut at every chunk boundary; a cut or spoiled file never raises."""
    import random

    from licence.import_reader import read_rows

    rng = random.Random(3)
    alphabet = ["a", '"', "\\", ",", "[", "]", "{", "}", " ", "名", "\n", "é", "😀"]

    def value(depth: int = 0) -> Any:
        k = rng.random()
        if depth > 3 or k < 0.3:
            return "".join(rng.choice(alphabet) for _ in range(rng.randrange(12)))
        if k < 0.45:
            return rng.choice([1, -2.5, 1e20, True, None, 12345678901234567890])
        if k < 0.7:
            return [value(depth + 1) for _ in range(rng.randrange(4))]
        return {str(value(9)): value(depth + 1) for _ in range(rng.randrange(4))}

    path = tmp_path / "array.json"
    for _ in range(60):
        doc = [{str(i): value() for i in range(rng.randrange(5))} for _ in range(rng.randrange(8))]
        text = json.dumps(doc, ensure_ascii=rng.random() < 0.5, indent=rng.choice([None, 1]))
        path.write_text(text, encoding="utf-8")
        for chunk in (1, 3, 64):
            assert [r for _, r in read_rows(path, "json", ReadLimits(chunk_bytes=chunk))] == doc
        path.write_text(text[: rng.randrange(1, len(text) + 1)] + rng.choice(["", "x", ",,", '"']))
        try:
            list(read_rows(path, "json", ReadLimits(chunk_bytes=rng.choice([1, 5, 64]))))
        except InvalidInput as exc:  # only a start that is no JSON array at all refuses the file
            assert exc.code in ("not_licence_file", "bad_file")
