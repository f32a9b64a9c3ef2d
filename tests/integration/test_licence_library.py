"""The licence library on a real database: SQLite always, PostgreSQL too when ONEWINDOW_TEST_PG_URL is set."""

import datetime as dt
import random
from dataclasses import replace

import pytest
from sqlalchemy import create_engine, func, select, update

import licence.library as library_module
from engine.cases.licences import licences_for_form
from engine.errors import Conflict, InvalidInput, NotFound
from forms.autofill import autofill
from forms.registry import FormRegistry
from licence.demo import demo_issuers, demo_organisations, demo_persons, load_demo
from licence.library import IllegalTransition, LicenceLibrary
from licence.model import LicenceIdentifier
from licence.tables import licence_status_events, licences, metadata

T0 = dt.datetime(2025, 3, 3, 1, 30, tzinfo=dt.UTC)


@pytest.fixture
def engine(db):
    """Each database of the suite (SQLite and PostgreSQL), with the migrated schema, emptied afterwards."""
    return db


@pytest.fixture
def conn(engine):
    with engine.connect() as connection:
        transaction = connection.begin()
        yield connection
        transaction.rollback()


@pytest.fixture
def lib(conn):
    return LicenceLibrary(conn, clock=lambda: T0)


@pytest.fixture
def org():
    return demo_organisations()[0]


@pytest.fixture
def issuer():
    return demo_issuers()["market"]


def business_face(org, **changes):
    face = {
        "name": org.name,
        "credit_code": org.credit_code,
        "legal_representative": org.legal_representative,
        "company_type": org.company_type,
        "registered_capital": "100",
        "address": org.address,
        "established_on": "2019/05/06",
        "business_scope": org.business_scope,
    }
    face.update(changes)
    return {k: v for k, v in face.items() if v is not None}


def issue_business(lib, org, issuer, **kwargs):
    code, name = issuer
    face = kwargs.pop("face", None) or business_face(org)
    return lib.issue(
        "business_licence",
        org.credit_code,
        org.name,
        face,
        code,
        name,
        dt.date(2025, 3, 3),
        actor="张科员",
        **kwargs,
    )


def food_face(org):
    return {
        "operator_name": org.name,
        "credit_code": org.credit_code,
        "legal_representative": org.legal_representative,
        "address": org.address,
        "premises": org.address,
        "main_business": "餐饮服务经营者",
        "business_items": "热食类食品制售",
    }


def test_issue_stores_a_verifiable_licence(lib, org, issuer):
    record = issue_business(lib, org, issuer, source_case="GL2025030300001")
    assert record.status == "valid"
    assert record.holder_id == org.credit_code and record.holder_id_kind == "credit_code"
    assert record.identifier.is_valid()
    assert str(record.identifier).startswith(f"1.2.156.02.{issuer[0]}.00000001.01.")
    assert LicenceIdentifier.parse(str(record.identifier)) == record.identifier
    assert record.face["registered_capital"] == 100  # normalised to a number
    assert record.face["established_on"] == "2019-05-06"  # normalised to ISO
    # a business licence is indefinite
    assert record.valid_from == dt.date(2025, 3, 3) and record.valid_until is None
    assert record.source_case == "GL2025030300001"
    assert [(e.status, e.actor, e.at) for e in record.history] == [("valid", "张科员", T0)]
    assert record.verify().ok
    assert lib.verify(record.id).ok
    assert lib.get(record.id) == record


def test_issue_takes_default_validity_of_the_type(lib, org, issuer):
    code, name = issuer
    record = lib.issue(
        "food_business_licence", org.credit_code, org.name, food_face(org), code, name, dt.date(2024, 2, 29)
    )
    assert record.valid_until == dt.date(2029, 2, 28)  # five years, last day inclusive


def test_serials_run_per_type_and_issuer(lib, org, issuer):
    other_issuer = demo_issuers()["health"]
    first = issue_business(lib, org, issuer)
    second = issue_business(lib, demo_organisations()[2], issuer)
    elsewhere = issue_business(lib, org, other_issuer)
    assert [first.identifier.serial, second.identifier.serial, elsewhere.identifier.serial] == [1, 2, 1]
    assert len({first.licence_number, second.licence_number, elsewhere.licence_number}) == 3


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"holder_id": "91350100M000100Y44"}, "bad_check_digit", "holder_id"),
        ({"holder_id": "11010519491231002X"}, "holder_kind_mismatch", "holder_id"),
        ({"type_code": "fishing_licence"}, "unknown_licence_type", "type_code"),
        ({"issuer_credit_code": "11010519491231002X"}, "bad_format", "issuer_credit_code"),
        ({"holder_name": "  "}, "required", "holder_name"),
        ({"face_change": {"business_scope": None}}, "required", "face.business_scope"),
        ({"face_change": {"colour": "蓝"}}, "unknown_field", "face.colour"),
        ({"face_change": {"established_on": "2019-02-30"}}, "bad_value", "face.established_on"),
        ({"face_change": {"registered_capital": "一百万"}}, "bad_value", "face.registered_capital"),
        ({"face_change": {"credit_code": "91350100M000100Y43"}}, "face_holder_mismatch", "face.credit_code"),
        ({"face_change": {"name": "别家公司"}}, "face_holder_mismatch", "face.name"),
        ({"valid_until": dt.date(2025, 3, 2)}, "bad_validity", "valid_until"),
        # check characters right, the standards' other rules broken (GB 32100 table 1, GB/T 2260)
        ({"holder_id": "0" * 18}, "bad_registration_authority", "holder_id"),
        ({"issuer_credit_code": "0" * 18}, "bad_registration_authority", "issuer_credit_code"),
        ({"holder_id": "94350102MA2XN4K8XL"}, "bad_organisation_category", "holder_id"),
        ({"holder_id": "91000000MA2XN4K8X3"}, "bad_region", "holder_id"),
        ({"face_change": {"credit_code": "0" * 18}}, "bad_registration_authority", "face.credit_code"),
    ],
)
def test_issue_refuses_bad_input(lib, conn, org, issuer, change, code, field):
    change = dict(change)  # the parameter is shared between database kinds
    args = {
        "type_code": "business_licence",
        "holder_id": org.credit_code,
        "holder_name": org.name,
        "face": business_face(org, **change.pop("face_change", {})),
        "issuer_credit_code": issuer[0],
        "issuer_name": issuer[1],
        "issue_date": dt.date(2025, 3, 3),
    }
    args.update(change)
    if "holder_name" in change:
        args["face"]["name"] = org.name
    with pytest.raises(InvalidInput) as info:
        lib.issue(**args)
    assert (info.value.code, info.value.detail.get("field")) == (code, field)
    assert conn.execute(select(func.count()).select_from(licences)).scalar() == 0


def person_face(person, id_number=None):
    return {
        "name": person.name,
        "gender": person.gender,
        "ethnicity": person.ethnicity,
        "birth_date": person.birth_date.isoformat(),
        "address": person.address,
        "id_number": id_number or person.resident_id,
    }


def with_check(first17: str) -> str:
    from licence.checkdigits import resident_id_check_char

    return first17 + resident_id_check_char(first17)


@pytest.mark.parametrize(
    ("first17", "code"),
    [
        ("11010520990101002", "birth_date_in_future"),  # born 2099
        ("11010520250304001", "birth_date_in_future"),  # born the day after the library's today (T0)
        ("11010518900101002", "birth_date_too_early"),
        ("11010519490230002", "bad_birth_date"),  # 30 February
        ("00000019491231002", "bad_region"),
    ],
)
def test_a_resident_id_is_refused_by_the_rule_it_breaks_as_holder_and_on_the_face(
    lib, conn, issuer, first17, code
):
    """Check characters right: the birth date (a real day, not after the library's today, not absurdly
    old) and the division decide, for the holder and for the face's id number alike; nothing is stored."""
    person = demo_persons()[0]
    bad = with_check(first17)
    police = demo_issuers()["police"]
    for holder, face, field in (
        (bad, person_face(person, bad), "holder_id"),
        (person.resident_id, person_face(person, bad), "face.id_number"),
    ):
        with pytest.raises(InvalidInput) as info:
            lib.issue("resident_id", holder, person.name, face, *police, dt.date(2025, 3, 3))
        assert (info.value.code, info.value.detail["field"]) == (code, field)
        assert any("\u4e00" <= ch <= "\u9fff" for ch in info.value.message)
    assert conn.execute(select(func.count()).select_from(licences)).scalar() == 0
    born_today = with_check("11010520250303001")  # T0 is 2025-03-03 in Shanghai: born that day is fine
    face = person_face(person, born_today) | {"birth_date": "2025-03-03"}
    assert (
        lib.issue("resident_id", born_today, person.name, face, *police, dt.date(2025, 3, 3)).status
        == "valid"
    )


def test_status_transitions_and_history(lib, org, issuer):
    record = issue_business(lib, org, issuer)
    t1, t2, t3 = (T0 + dt.timedelta(days=d) for d in (1, 2, 3))
    assert lib.suspend(record.id, "责令停业整顿", "执法一队", t1).status == "suspended"
    with pytest.raises(Conflict) as info:
        lib.suspend(record.id, "再次暂扣", "执法一队", t1)
    assert info.value.code == "illegal_transition"
    assert lib.reinstate(record.id, "整改完成", "执法一队", t2).status == "valid"
    revoked = lib.revoke(record.id, "严重违法", "局长", t3)
    assert revoked.status == "revoked"
    assert [(e.from_status, e.status, e.reason, e.actor, e.at) for e in revoked.history] == [
        (None, "valid", "颁发", "张科员", T0),
        ("valid", "suspended", "责令停业整顿", "执法一队", t1),
        ("suspended", "valid", "整改完成", "执法一队", t2),
        ("valid", "revoked", "严重违法", "局长", t3),
    ]
    for action in (lib.reinstate, lib.suspend, lib.revoke, lib.cancel):
        with pytest.raises(Conflict):
            action(record.id, "试图改变终局状态", "某人", t3)
    assert lib.get(record.id).status == "revoked"


def test_cancel_is_final_and_needs_a_reason(lib, org, issuer):
    record = issue_business(lib, org, issuer)
    with pytest.raises(InvalidInput) as info:
        lib.cancel(record.id, "  ", "窗口")
    assert info.value.detail["field"] == "reason"
    assert lib.cancel(record.id, "申请人申请注销", "窗口").status == "cancelled"
    with pytest.raises(Conflict):
        lib.reinstate(record.id, "恢复", "窗口")


def test_unknown_licence_is_not_found(lib):
    with pytest.raises(NotFound):
        lib.get("no-such-id")
    with pytest.raises(NotFound):
        lib.revoke("no-such-id", "原因", "某人")


def test_expire_due_marks_only_valid_licences_past_their_last_day_and_is_idempotent(lib, conn, org, issuer):
    code, name = issuer
    orgs = demo_organisations()

    def food(o, issued):
        return lib.issue("food_business_licence", o.credit_code, o.name, food_face(o), code, name, issued)

    due = food(orgs[0], dt.date(2018, 3, 1))  # valid until 2023-02-28
    last_day = food(orgs[1], dt.date(2018, 3, 2))  # valid until 2023-03-01
    in_force = dt.datetime(2022, 6, 1, 2, tzinfo=dt.UTC)  # suspended while in force (until 2022-12-31)
    suspended = lib.suspend(food(orgs[2], dt.date(2018, 1, 1)).id, "整顿", "执法队", in_force)
    today = dt.date(2023, 3, 1)
    assert due.effective_status(today) == "expired" and due.status == "valid"
    assert last_day.effective_status(today) == "valid"

    later = T0 + dt.timedelta(hours=5)
    assert lib.expire_due(today, at=later) == 1
    assert lib.expire_due(today, at=later) == 0
    expired = lib.get(due.id)
    assert expired.status == "expired"
    assert (expired.history[-1].status, expired.history[-1].at) == ("expired", later)
    assert lib.get(last_day.id).status == "valid"
    assert lib.get(suspended.id).status == "suspended"
    events = conn.execute(
        select(func.count())
        .select_from(licence_status_events)
        .where(licence_status_events.c.status == "expired")
    ).scalar()
    assert events == 1
    assert lib.cancel(due.id, "有效期届满未延续，依法注销", "窗口").status == "cancelled"


def test_by_holder_lists_newest_first_and_filters_inactive(lib, org, issuer):
    code, name = issuer
    old = lib.issue(
        "food_business_licence", org.credit_code, org.name, food_face(org), code, name, dt.date(2015, 1, 1)
    )
    business = issue_business(lib, org, issuer)
    newer = lib.issue(
        "food_business_licence", org.credit_code, org.name, food_face(org), code, name, dt.date(2024, 1, 1)
    )
    revoked = lib.revoke(newer.id, "吊销", "局长")
    everything = lib.by_holder(org.credit_code.lower())
    assert [r.id for r in everything] == [business.id, revoked.id, old.id]
    active = lib.by_holder(org.credit_code, include_inactive=False, today=dt.date(2025, 6, 1))
    assert [r.id for r in active] == [business.id]  # the 2015 one is past its validity, the 2024 one revoked
    assert lib.by_holder("11010519491231002X") == []
    of_types = lib.by_holder(org.credit_code, type_codes={"business_licence", "hygiene_licence"})
    assert [r.id for r in of_types] == [business.id]
    assert lib.by_holder(org.credit_code, type_codes={"food_business_licence"}, history=False) == [
        replace(r, history=()) for r in everything if r.type_code == "food_business_licence"
    ]
    assert lib.by_holder(org.credit_code, type_codes=()) == []  # no type asked for: none, unread


def test_renewal_and_replacement_are_linked(lib, org, issuer):
    code, name = issuer
    old = lib.issue(  # in force on T0, the day of the renewal
        "food_business_licence", org.credit_code, org.name, food_face(org), code, name, dt.date(2020, 6, 1)
    )
    renewal = lib.issue(
        "food_business_licence", org.credit_code, org.name, food_face(org), code, name, dt.date(2024, 12, 1),
        renews=old.id,
    )  # fmt: skip
    assert renewal.renews_id == old.id and renewal.identifier.serial == old.identifier.serial + 1
    face = food_face(org) | {"business_items": "热食类食品制售；冷食类食品制售"}
    replacement = lib.issue(
        "food_business_licence", org.credit_code, org.name, face, code, name, dt.date(2025, 2, 1),
        replaces=renewal.id,
    )  # fmt: skip
    assert replacement.replaces_id == renewal.id
    assert (replacement.identifier.serial, replacement.identifier.version) == (renewal.identifier.serial, 2)
    assert replacement.identifier.is_valid() and replacement.licence_number.endswith("-2")
    replaced = lib.get(renewal.id)
    assert replaced.status == "cancelled" and replacement.licence_number in replaced.history[-1].reason
    with pytest.raises(Conflict):
        lib.issue(
            "food_business_licence", org.credit_code, org.name, face, code, name, dt.date(2025, 2, 2),
            replaces=renewal.id,
        )  # fmt: skip
    other = demo_organisations()[1]
    with pytest.raises(InvalidInput) as info:
        lib.issue(
            "food_business_licence", other.credit_code, other.name, food_face(other), code, name,
            dt.date(2025, 2, 2), renews=replacement.id,
        )  # fmt: skip
    assert info.value.code == "renewal_mismatch"


def test_verify_detects_tampering(lib, conn, org, issuer):
    record = issue_business(lib, org, issuer)
    conn.execute(
        update(licences)
        .where(licences.c.id == record.id)
        .values(face=business_face(org, registered_capital=9999))
    )
    result = lib.verify(record.id)
    assert not result.ok and [p["code"] for p in result.problems] == ["integrity_mismatch"]

    other = issue_business(lib, demo_organisations()[2], issuer)
    ident = str(other.identifier)
    wrong = ident[:-1] + ("0" if ident[-1] != "0" else "1")
    conn.execute(update(licences).where(licences.c.id == other.id).values(identifier=wrong))
    codes = [p["code"] for p in lib.verify(other.id).problems]
    assert "bad_check_digit" in codes


def test_the_library_never_commits(engine, org, issuer):
    with engine.connect() as connection:
        transaction = connection.begin()
        issue_business(LicenceLibrary(connection), org, issuer)
        transaction.rollback()
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(licences)).scalar() == 0


def test_committed_licence_reads_back_identically_on_a_new_connection(engine, org, issuer):
    with engine.begin() as connection:
        record = issue_business(LicenceLibrary(connection, clock=lambda: T0), org, issuer)
    with engine.connect() as connection:
        again = LicenceLibrary(connection).get(record.id)
    assert again == record and again.verify().ok and again.created_at == T0


def test_serials_taken_for_several_licences_at_once_follow_the_counters(lib, org, issuer, conn):
    """What a joint approval does: every counter's next serial in one call, each licence issued with
    its own; a second licence of the same counter takes the one after, and other counters start at 1."""
    code, _ = issuer
    first = issue_business(lib, org, issuer).identifier.serial
    pairs = [("business_licence", code), ("food_business_licence", code), ("business_licence", code)]
    taken = library_module.next_serials(conn, pairs)
    assert taken == {("business_licence", code): first + 1, ("food_business_licence", code): 1}
    orgs = demo_organisations()
    given = issue_business(lib, orgs[2], issuer, serial=taken[pairs[0]])
    after = issue_business(lib, orgs[3], issuer)  # the counter is held: the next serial, read again
    assert (given.identifier.serial, after.identifier.serial) == (first + 1, first + 2)
    assert library_module.next_serials(conn, []) == {}


def test_serials_and_own_licences_read_together_are_what_they_read_apart(lib, org, issuer, conn):
    """An approval's serials and its holders' own business licences (one statement on PostgreSQL): the
    same serials as ``next_serials`` and, per holder, the newest business licence valid on the day."""
    code, name = issuer
    orgs = demo_organisations()
    issue_business(lib, org, issuer, valid_until=dt.date(2025, 5, 31))  # past on the day asked
    newest = issue_business(lib, org, issuer)
    face = business_face(org)
    lib.issue("business_licence", org.credit_code, org.name, face, code, name, dt.date(2024, 1, 2))  # older
    lib.issue(
        "food_business_licence", org.credit_code, org.name, food_face(org), code, name, dt.date(2025, 3, 3)
    )
    last = issue_business(lib, orgs[2], issuer)
    lib.revoke(last.id, "吊销", "局长")  # revoked: not relied on
    pairs = [("business_licence", code), ("food_business_licence", code), ("tobacco_retail_licence", code)]
    holders = [f" {org.credit_code.lower()} ", orgs[2].credit_code, orgs[3].credit_code]
    today = dt.date(2025, 6, 1)
    serials, owned = library_module.serials_and_own_licences(conn, pairs, holders, today)
    assert serials == library_module.next_serials(conn, pairs)
    assert serials[pairs[0]] == last.identifier.serial + 1 and serials[pairs[2]] == 1
    assert owned == library_module.own_business_licences(conn, holders, today)
    found = {holder: record and record.id for holder, record in owned.items()}  # the faces, no history
    assert found == {holders[0]: newest.id, holders[1]: None, holders[2]: None}  # by the ids given
    assert owned[holders[0]].face == newest.face
    assert library_module.serials_and_own_licences(conn, [], [], today) == ({}, {})


def test_the_own_business_licence_is_the_one_in_force_not_a_renewal_yet_to_begin(lib, org, issuer, conn):
    """A business licence renewed before it ends: the renewal (newer, a new address on its face) begins
    the day after the old one's last day; until then the holder's own business licence, whose face fills
    the licences a case issues, is the old one, as every other reader of a licence in force takes it."""
    code, name = issuer
    old = issue_business(lib, org, issuer, valid_until=dt.date(2025, 12, 31))
    renewal = lib.issue(
        "business_licence", org.credit_code, org.name, business_face(org, address="福州市鼓楼区新址路1号"),
        code, name, T0.date(), renews=old.id, valid_until=dt.date(2045, 12, 31),
    )  # fmt: skip
    assert renewal.valid_from == dt.date(2026, 1, 1)
    pairs = [("food_business_licence", code)]
    for day, in_force in ((T0.date(), old), (old.valid_until, old), (renewal.valid_from, renewal)):
        owned = library_module.own_business_licences(conn, [org.credit_code], day)
        assert owned[org.credit_code].id == in_force.id, day
        _, together = library_module.serials_and_own_licences(conn, pairs, [org.credit_code], day)
        assert together == owned
        assert lib.latest_usable(org.credit_code, "business_licence", day).id == in_force.id


def test_a_lost_serial_race_is_a_conflict(lib, org, issuer, monkeypatch):
    issue_business(lib, org, issuer)
    monkeypatch.setattr(library_module, "next_serials", lambda conn, pairs: dict.fromkeys(pairs, 1))
    with pytest.raises(Conflict):
        issue_business(lib, demo_organisations()[2], issuer)


def test_demo_dataset_is_valid_and_deterministic(conn, tmp_path):
    assert len(demo_persons()) >= 10 and len(demo_organisations()) >= 10
    count = load_demo(conn)
    lib = LicenceLibrary(conn)
    rows = conn.execute(select(licences.c.id, licences.c.identifier, licences.c.status)).all()
    assert count == len(rows) >= 30
    assert {"valid", "expired", "revoked", "suspended"} <= {r.status for r in rows}
    assert len({lib.get(r.id).type_code for r in rows}) == 10
    assert all(lib.verify(r.id).ok for r in rows)
    other = create_engine(f"sqlite:///{tmp_path / 'other.db'}")
    metadata.create_all(other)
    with other.begin() as other_conn:
        load_demo(other_conn)
        again = other_conn.execute(select(licences.c.id, licences.c.identifier, licences.c.status)).all()
    other.dispose()
    assert sorted(map(tuple, again)) == sorted(map(tuple, rows))


def test_latest_usable_picks_the_newest_licence_the_holder_may_rely_on(lib, org, issuer):
    code, name = issuer

    def food(issued):
        return lib.issue(
            "food_business_licence", org.credit_code, org.name, food_face(org), code, name, issued
        )

    old = food(dt.date(2021, 1, 1))  # until 2025-12-31
    newer = food(dt.date(2024, 1, 1))
    assert lib.latest_usable(org.credit_code, "food_business_licence", dt.date(2025, 6, 1)).id == newer.id
    lib.suspend(newer.id, "整顿", "执法队")
    assert lib.latest_usable(org.credit_code, "food_business_licence", dt.date(2025, 6, 1)).id == old.id
    assert lib.latest_usable(org.credit_code, "food_business_licence", dt.date(2026, 1, 1)) is None
    assert lib.latest_usable(org.credit_code, "hygiene_licence", dt.date(2025, 6, 1)) is None


def test_the_licences_read_for_a_form_fill_it_as_all_of_the_holders_would(lib, conn, org, issuer):
    """``for_forms`` reads of each type only the best usable licence and the newest valid one (every one
    of a type none of which is usable); with ``licences_for_form``'s fall-back the form fills exactly as
    from every licence, skipped licences included, and the material check finds the same licence, on any
    day."""
    code, name = issuer
    rng = random.Random(7)
    form = FormRegistry.load().get("apply.food_business")
    for n in range(40):
        issued = dt.date(2015, 1, 1) + dt.timedelta(days=rng.randrange(3650))
        face = food_face(org)
        until = rng.choice([None, issued + dt.timedelta(days=rng.randrange(200, 3000))])
        starts = issued + dt.timedelta(days=rng.choice([0, 0, 0, 400]))
        record = lib.issue(
            "food_business_licence", org.credit_code, org.name, face, code, name, issued,
            valid_until=until, valid_from=starts,
        )  # fmt: skip
        if n % 4 == 3:  # a face lacking a value the form binds (stored before faces were checked)
            face.pop(rng.choice(["premises", "business_items", "main_business"]))
            conn.execute(update(licences).where(licences.c.id == record.id).values(face=face))
        in_force = dt.datetime.combine(issued, dt.time(2), tzinfo=dt.UTC)  # a sanction of a licence in force
        if n % 5 == 4:
            lib.revoke(record.id, "吊销", "局长", in_force)
        elif n % 9 == 2:
            lib.suspend(record.id, "暂扣", "局长", in_force)
    issue_business(lib, org, issuer)
    everything = lib.by_holder(org.credit_code, history=False)
    materials = {"business_licence", "resident_id"}
    fewer = False
    days = [dt.date(2014, 6, 1), dt.date(2016, 6, 1), dt.date(2019, 3, 3), dt.date(2020, 1, 1)]
    for today in [*days, dt.date(2025, 7, 1)]:  # 2014: none is in force yet
        read = licences_for_form(conn, lambda: T0, org.credit_code, form, today, materials, holder_kind=None)
        fewer |= len(read) < len(everything)
        assert autofill(form, licences=read, today=today) == autofill(form, licences=everything, today=today)
        for type_code in form.licence_types | materials:
            newest = [x.id for x in everything if x.type_code == type_code and _valid_on(x, today)][:1]
            assert [x.id for x in read if x.type_code == type_code and _valid_on(x, today)][:1] == newest
        assert [x.id for x in read] == [x.id for x in everything if x in read]  # newest first, as by_holder
    assert fewer


def test_licences_alike_in_term_and_issue_are_read_as_autofill_ranks_them(lib, conn, org, issuer):
    """Of many licences of a type autofill ranks by validity and issue alike, the read keeps the one it
    takes (ties broken by licence number, then id, by code point) and the newest valid one, not every tie
    nor those ranked above it that it skips; the form fills as from all of them, skipped ones and all."""
    code, name = issuer
    form = FormRegistry.load().get("apply.food_business")
    issued, until, today = dt.date(2024, 3, 1), dt.date(2029, 2, 28), dt.date(2025, 1, 6)

    def food():
        return lib.issue(
            "food_business_licence", org.credit_code, org.name, food_face(org), code, name, issued,
            valid_until=until,
        )  # fmt: skip

    made = [food() for _ in range(30)]
    ranked = sorted(made, key=lambda x: (x.licence_number, x.id), reverse=True)
    lib.suspend(ranked[0].id, "暂扣", "局长")  # not valid: skipped
    later = {"valid_from": today + dt.timedelta(days=30)}  # valid, not in force: skipped
    conn.execute(update(licences).where(licences.c.id == ranked[1].id).values(**later))
    everything = lib.by_holder(org.credit_code, history=False)
    newest_usable = next(x for x in everything if x.is_usable(today))  # the material check's
    read = licences_for_form(conn, lambda: T0, org.credit_code, form, today, holder_kind=None)
    assert {x.id for x in read if x.type_code == "food_business_licence"} == {ranked[2].id, newest_usable.id}
    filled = autofill(form, licences=read, today=today)
    assert filled == autofill(form, licences=everything, today=today)
    assert {p.licence_id for p in filled.provenance.values() if p.source == "licence"} == {ranked[2].id}


def _valid_on(record, today):  # what the material check relies on: valid, in force, not past its last day
    return record.is_usable(today)


def test_the_newest_valid_licence_is_read_even_where_an_older_one_fills_the_form(lib, conn, issuer):
    """The material check takes a type's newest licence stored valid and unexpired; autofill takes the one
    that lasts longest. Where they differ, ``for_forms`` reads both."""
    code, name = issuer
    org = demo_organisations()[1]
    form = FormRegistry.load().get("apply.food_business")
    terms = [(dt.date(2018, 1, 2), dt.date(2030, 1, 1)), (dt.date(2019, 1, 2), dt.date(2021, 6, 1))]
    lasting, newest = (
        lib.issue(
            "food_business_licence",
            org.credit_code,
            org.name,
            food_face(org),
            code,
            name,
            issued,
            valid_until=until,
        )  # fmt: skip
        for issued, until in terms
    )
    today = dt.date(2020, 1, 1)
    read = licences_for_form(conn, lambda: T0, org.credit_code, form, today, holder_kind=None)
    assert [x.id for x in read] == [newest.id, lasting.id]
    filled = autofill(form, licences=read, today=today)
    assert {p.licence_id for p in filled.provenance.values() if p.source == "licence"} == {lasting.id}


# --- renewal (延续) and replacement (换发) continue a licence in force only ----------------------------


def table_rows(conn):
    return (
        sorted(tuple(r) for r in conn.execute(select(licences))),
        sorted(tuple(r) for r in conn.execute(select(licence_status_events))),
    )


def food_licence_in(lib, org, issuer, status):
    """A food business licence of ``org`` in ``status`` on T0 (2025-03-03); ``expired_unmarked``: past its
    last day, but not yet marked by the worker (stored valid)."""
    code, name = issuer
    issued = dt.date(2015, 1, 1) if status.startswith("expired") else dt.date(2024, 1, 1)
    record = lib.issue("food_business_licence", org.credit_code, org.name, food_face(org), code, name, issued)
    if status == "revoked":
        lib.revoke(record.id, "严重违法", "执法一队")
    elif status == "cancelled":
        lib.cancel(record.id, "申请注销", "窗口")
    elif status == "suspended":
        lib.suspend(record.id, "责令停业整顿", "执法一队")
    elif status == "expired":
        assert lib.expire_due(T0.date()) == 1
    return lib.get(record.id)


@pytest.mark.parametrize("action", ["renews", "replaces"])
@pytest.mark.parametrize(
    ("status", "seen"),
    [
        ("revoked", "revoked"),
        ("cancelled", "cancelled"),
        ("suspended", "suspended"),
        ("expired", "expired"),
        ("expired_unmarked", "expired"),
    ],
)
def test_a_licence_not_in_force_is_neither_renewed_nor_replaced(lib, conn, org, issuer, action, status, seen):
    """Revoked and cancelled licences have ended, an expired one can no longer be renewed (no type has rules
    for a late renewal) nor replaced, a suspended one waits for its reinstatement: the refusal names the
    licence and its status, and nothing is written."""
    code, name = issuer
    old = food_licence_in(lib, org, issuer, status)
    before = table_rows(conn)
    with pytest.raises(IllegalTransition) as info:
        lib.issue(
            "food_business_licence", org.credit_code, org.name, food_face(org), code, name, T0.date(),
            **{action: old.id},
        )  # fmt: skip
    err = info.value
    assert isinstance(err, Conflict) and err.code == "illegal_transition"
    assert err.detail["licence_id"] == old.id and err.detail["licence_number"] == old.licence_number
    assert (
        err.detail["status"] == seen
        and err.detail["action"] == {"renews": "renew", "replaces": "replace"}[action]
    )
    assert err.detail["field"] == action
    assert old.licence_number in err.message and STATUS_WORDS[seen] in err.message
    assert table_rows(conn) == before
    assert lib.get(old.id) == old


STATUS_WORDS = {"revoked": "吊销", "cancelled": "注销", "suspended": "暂扣", "expired": "届满"}


def test_a_licence_in_force_is_renewed_once_up_to_its_last_day(lib, conn, org, issuer):
    """Judged on the day of the command (``at``), never on the issue date the caller gives: a backdated
    renewal of a licence that has ended is refused, one on its last day is not, and one licence is
    renewed once, whichever of its versions (a replacement is a new version of it) is named."""
    code, name = issuer
    old = lib.issue(
        "food_business_licence", org.credit_code, org.name, food_face(org), code, name, dt.date(2020, 3, 1)
    )
    assert old.valid_until == dt.date(2025, 2, 28)

    def renew(issued: dt.date, on: dt.date, renews: str):
        at = dt.datetime.combine(on, dt.time(10), tzinfo=dt.UTC)
        return lib.issue(
            "food_business_licence", org.credit_code, org.name, food_face(org), code, name, issued,
            renews=renews, at=at,
        )  # fmt: skip

    for issued in (old.valid_until, old.valid_until - dt.timedelta(days=30)):  # backdated: still refused
        with pytest.raises(IllegalTransition) as info:
            renew(issued, old.valid_until + dt.timedelta(days=1), old.id)
        assert info.value.detail["status"] == "expired"
    renewal = renew(old.valid_until, old.valid_until, old.id)
    assert renewal.renews_id == old.id and renewal.status == "valid"
    before = table_rows(conn)
    with pytest.raises(IllegalTransition) as info:
        renew(old.valid_until, old.valid_until, old.id)
    assert info.value.detail["renewed_by"] == renewal.id and renewal.licence_number in info.value.message
    assert table_rows(conn) == before


def test_a_renewal_takes_over_the_day_after_the_term_it_renews_ends(lib, conn, org, issuer):
    """延续 extends the term: renewed before the old licence ends, the new one is valid from the day after
    the old one's last day (never both in force on one day); a ``valid_from`` given must be that day (one
    before overlaps the old term, one after leaves a gap), and a licence without a last day has no term to
    extend. Every refusal names the field and writes nothing."""
    code, name = issuer
    old = lib.issue(
        "food_business_licence", org.credit_code, org.name, food_face(org), code, name, dt.date(2020, 6, 1)
    )
    assert old.valid_until == dt.date(2025, 5, 31)

    def renew(renews: str, **kwargs):
        return lib.issue(
            "food_business_licence", org.credit_code, org.name, food_face(org), code, name, T0.date(),
            renews=renews, **kwargs,
        )  # fmt: skip

    before = table_rows(conn)
    for valid_from, wanted in (
        (T0.date(), "renewal_overlaps_validity"),
        (old.valid_until, "renewal_overlaps_validity"),
        (old.valid_until + dt.timedelta(days=2), "renewal_validity_gap"),
    ):
        with pytest.raises(InvalidInput) as info:
            renew(old.id, valid_from=valid_from)
        assert (info.value.code, info.value.detail["field"]) == (wanted, "valid_from")
        assert info.value.detail["licence_id"] == old.id and old.licence_number in info.value.message
        assert info.value.detail["valid_from"] == "2025-06-01" and "2025-06-01" in info.value.message
        assert table_rows(conn) == before
    business = issue_business(lib, org, issuer)  # 长期有效
    before = table_rows(conn)
    with pytest.raises(InvalidInput) as info:
        lib.issue(
            "business_licence", org.credit_code, org.name, business_face(org), code, name, T0.date(),
            renews=business.id,
        )  # fmt: skip
    assert (info.value.code, info.value.detail["field"]) == ("renewal_of_indefinite_licence", "renews")
    assert table_rows(conn) == before

    renewal = renew(old.id)
    assert (renewal.issue_date, renewal.valid_from) == (T0.date(), dt.date(2025, 6, 1))
    assert renewal.valid_until == dt.date(2030, 5, 31)  # the type's five years from its first day
    assert lib.get(renewal.id) == renewal
    for day, in_force in ((T0.date(), old), (old.valid_until, old), (renewal.valid_from, renewal)):
        assert [r.id for r in (old, renewal) if r.is_usable(day)] == [in_force.id], day
        assert lib.latest_usable(org.credit_code, "food_business_licence", day).id == in_force.id
    # the day it must begin, given, is taken (a second licence, the first one renewed already)
    other = lib.issue(
        "food_business_licence", org.credit_code, org.name, food_face(org), code, name, dt.date(2021, 1, 1)
    )
    assert renew(other.id, valid_from=dt.date(2026, 1, 1)).valid_from == dt.date(2026, 1, 1)


def test_a_renewal_near_the_last_day_a_date_can_be_is_refused_not_a_crash(lib, conn, org, issuer):
    """A licence stored valid up to 9999-12-31 (as other systems write 长期有效, and as an import takes it)
    has no day after its last one; one ending in 9998 has one, but the type's five years from there end
    past any date: both refusals name their field and write nothing (they were an OverflowError and a
    ValueError); the renewal with its last day given is stored."""
    code, name = issuer

    def food(issued: dt.date, **kwargs):
        return lib.issue(
            "food_business_licence", org.credit_code, org.name, food_face(org), code, name, issued, **kwargs
        )

    for until, wanted, field in (
        (dt.date.max, "renewal_of_indefinite_licence", "renews"),
        (dt.date(9998, 6, 1), "date_out_of_range", "valid_until"),
    ):
        old = food(dt.date(2024, 1, 1), valid_until=until)
        before = table_rows(conn)
        with pytest.raises(InvalidInput) as info:
            food(T0.date(), renews=old.id)
        assert (info.value.code, info.value.detail["field"]) == (wanted, field)
        assert table_rows(conn) == before
    renewal = food(T0.date(), renews=old.id, valid_until=dt.date.max)
    assert (renewal.valid_from, renewal.valid_until) == (dt.date(9998, 6, 2), dt.date.max)


def test_a_licence_is_a_renewal_or_a_new_version_never_both(lib, conn, org, issuer):
    """``renews`` and ``replaces`` together are refused before anything is read or written, whether they
    name one licence or two: the error names both fields, and nothing is stored or cancelled."""
    code, name = issuer
    first, second = (
        lib.issue("food_business_licence", org.credit_code, org.name, food_face(org), code, name, issued)
        for issued in (dt.date(2024, 1, 1), dt.date(2024, 6, 1))
    )
    before = table_rows(conn)
    # renewing the first (its term ends first) while replacing the second was stored as both
    for renews, replaces in ((first.id, second.id), (first.id, first.id), (second.id, "no-such-licence")):
        with pytest.raises(InvalidInput) as info:
            lib.issue(
                "food_business_licence", org.credit_code, org.name, food_face(org), code, name, T0.date(),
                renews=renews, replaces=replaces,
            )  # fmt: skip
        err = info.value
        assert (err.code, err.detail["field"], err.detail["fields"]) == (
            "renews_and_replaces",
            "renews",
            ["renews", "replaces"],
        )
        assert "延续" in err.message and "换发" in err.message
        assert table_rows(conn) == before
    assert lib.get(first.id) == first and lib.get(second.id) == second
    # a new version keeps the serial of the licence it replaces: another one given is refused, not ignored
    with pytest.raises(InvalidInput) as info:
        lib.issue(
            "food_business_licence", org.credit_code, org.name, food_face(org), code, name, T0.date(),
            replaces=first.id, serial=second.identifier.serial + 1,
        )  # fmt: skip
    assert (info.value.code, info.value.detail["fields"]) == ("serial_and_replaces", ["serial", "replaces"])
    assert table_rows(conn) == before


def test_a_replaced_licence_renewed_before_is_not_renewed_again(lib, conn, org, issuer):
    code, name = issuer
    first = lib.issue(
        "food_business_licence", org.credit_code, org.name, food_face(org), code, name, dt.date(2024, 1, 1)
    )
    renewal = lib.issue(
        "food_business_licence", org.credit_code, org.name, food_face(org), code, name, T0.date(),
        renews=first.id,
    )  # fmt: skip
    replacement = lib.issue(
        "food_business_licence", org.credit_code, org.name, food_face(org), code, name, T0.date(),
        replaces=first.id,
    )  # fmt: skip
    before = table_rows(conn)
    with pytest.raises(IllegalTransition) as info:
        lib.issue(
            "food_business_licence", org.credit_code, org.name, food_face(org), code, name, T0.date(),
            renews=replacement.id,
        )  # fmt: skip
    assert info.value.detail["renewed_by"] == renewal.id
    assert table_rows(conn) == before


def test_a_licence_is_its_own_versions_not_another_issuers_of_the_same_serial(lib, conn, org, issuer):
    """The serial is counted per type and issuer: the first food licence of two issuers both have serial 1.
    One renewed, the other was refused renewal as renewed already (by the first one's renewal), and a
    replacement of it was held to the first one's renewal; one licence is its type, issuer and serial."""
    code, name = issuer
    other_code, other_name = demo_issuers()["health"]
    assert other_code != code

    def food(issuer_code: str, issuer_name: str, issued: dt.date, **kwargs):
        return lib.issue(
            "food_business_licence", org.credit_code, org.name, food_face(org), issuer_code, issuer_name,
            issued, **kwargs,
        )  # fmt: skip

    first = food(code, name, dt.date(2024, 1, 1))
    second = food(other_code, other_name, dt.date(2024, 1, 1))
    assert first.identifier.serial == second.identifier.serial == 1
    food(code, name, T0.date(), renews=first.id)
    renewal = food(other_code, other_name, T0.date(), renews=second.id)
    assert renewal.renews_id == second.id and renewal.valid_from == dt.date(2029, 1, 1)


def test_a_replacement_keeps_the_term_of_the_licence_it_replaces(lib, conn, org, issuer):
    code, name = issuer
    old = lib.issue(
        "food_business_licence", org.credit_code, org.name, food_face(org), code, name, dt.date(2024, 1, 1)
    )
    before = table_rows(conn)
    with pytest.raises(InvalidInput) as info:
        lib.issue(
            "food_business_licence", org.credit_code, org.name, food_face(org), code, name, T0.date(),
            replaces=old.id, valid_until=old.valid_until + dt.timedelta(days=1),
        )  # fmt: skip
    assert (info.value.code, info.value.detail["field"]) == ("replacement_extends_validity", "valid_until")
    assert table_rows(conn) == before
    with pytest.raises(InvalidInput) as info:  # nor backwards, from an earlier first day
        lib.issue(
            "food_business_licence", org.credit_code, org.name, food_face(org), code, name, T0.date(),
            replaces=old.id, valid_from=old.valid_from - dt.timedelta(days=1),
        )  # fmt: skip
    assert (info.value.code, info.value.detail["field"]) == ("replacement_extends_validity", "valid_from")
    assert info.value.detail["licence_id"] == old.id
    assert table_rows(conn) == before
    replacement = lib.issue(
        "food_business_licence", org.credit_code, org.name, food_face(org), code, name, T0.date(),
        replaces=old.id,
    )  # fmt: skip
    assert (replacement.valid_from, replacement.valid_until) == (old.valid_from, old.valid_until)
    assert lib.get(old.id).status == "cancelled"


def test_a_replacement_of_a_renewed_licence_keeps_its_last_day(lib, conn, org, issuer):
    """A licence renewed (the renewal begins the day after its last day) and then replaced: a replacement
    ending sooner left days between it and the renewal on which the holder had no licence in force (a
    renewal is refused such a gap itself). Refused naming valid_until, the day it must run to and the
    renewal; nothing written (without a renewal a shorter term is refused too: the next test)."""
    code, name = issuer

    def food(issued: dt.date, **kwargs):
        return lib.issue(
            "food_business_licence", org.credit_code, org.name, food_face(org), code, name, issued, **kwargs
        )

    old = food(dt.date(2024, 1, 1))  # 2024-01-01 .. 2028-12-31
    renewal = food(T0.date(), renews=old.id)
    assert renewal.valid_from == dt.date(2029, 1, 1)
    before = table_rows(conn)
    with pytest.raises(InvalidInput) as info:
        food(T0.date(), replaces=old.id, valid_until=dt.date(2027, 12, 31))
    err = info.value
    assert (err.code, err.detail["field"]) == ("replacement_validity_gap", "valid_until")
    assert err.detail["valid_until"] == "2028-12-31" and err.detail["renewed_by"] == renewal.id
    assert renewal.licence_number in err.message and "2028-12-31" in err.message
    assert table_rows(conn) == before
    replacement = food(T0.date(), replaces=old.id)
    assert replacement.valid_until + dt.timedelta(days=1) == renewal.valid_from
    # a second version of the renewed licence is held to the same last day
    with pytest.raises(InvalidInput) as info:
        food(T0.date(), replaces=replacement.id, valid_until=dt.date(2028, 12, 30))
    assert info.value.code == "replacement_validity_gap"


def test_a_replacement_never_shortens_the_term_of_the_licence_it_replaces(lib, conn, org, issuer):
    """换发 changes the certificate, not the term: a replacement of a licence not renewed ending before
    the old one's last day (or given a last day where the old one is 长期有效) silently took those days
    from the holder. Refused naming valid_until, the day it must run to and the day asked for; nothing
    written, the old version still valid. Its own last day, given, is taken."""
    code, name = issuer

    def food(issued: dt.date, **kwargs):
        return lib.issue(
            "food_business_licence", org.credit_code, org.name, food_face(org), code, name, issued, **kwargs
        )

    old = food(dt.date(2024, 6, 1))  # 2024-06-01 .. 2029-05-31, not renewed
    business = issue_business(lib, org, issuer)  # 长期有效
    for replaced, until, must in (
        (old, dt.date(2027, 12, 31), "2029-05-31"),
        (old, dt.date(2029, 5, 30), "2029-05-31"),
        (business, dt.date(2045, 12, 31), None),
    ):
        before = table_rows(conn)
        with pytest.raises(InvalidInput) as info:
            lib.issue(
                replaced.type_code, org.credit_code, org.name, dict(replaced.face), code, name, T0.date(),
                replaces=replaced.id, valid_until=until,
            )  # fmt: skip
        err = info.value
        assert (err.code, err.detail["field"]) == ("replacement_shortens_validity", "valid_until")
        asked = (err.detail.get("valid_until"), err.detail["requested_valid_until"])
        assert asked == (must, until.isoformat())
        assert err.detail.get("indefinite") is (None if must else True)
        assert err.detail["licence_id"] == replaced.id and replaced.licence_number in err.message
        assert (must or "长期有效") in err.message and until.isoformat() in err.message
        assert table_rows(conn) == before and lib.get(replaced.id).status == "valid"
    assert food(T0.date(), replaces=old.id, valid_until=old.valid_until).valid_until == old.valid_until
    # 9999-12-31 is 长期有效 as other systems write it: the replacement of a 长期有效 licence stays so
    again = lib.issue(
        business.type_code, org.credit_code, org.name, dict(business.face), code, name, T0.date(),
        replaces=business.id, valid_until=dt.date.max,
    )  # fmt: skip
    assert again.valid_until is None


def test_a_replacement_leaves_no_day_without_a_licence_in_force(lib, conn, org, issuer):
    """The old version is cancelled when its replacement is issued: a replacement beginning later than
    that day (T0, 2025-03-03) left the holder without a licence in force until then, the old one's term
    running; a replacement of a licence whose term has not begun (a renewal issued early) begins on its
    first day at the latest. Refused naming valid_from and the latest day it may begin; nothing written."""
    code, name = issuer

    def food(issued: dt.date, **kwargs):
        return lib.issue(
            "food_business_licence", org.credit_code, org.name, food_face(org), code, name, issued, **kwargs
        )

    old = food(dt.date(2024, 1, 1))  # in force 2024-01-01 .. 2028-12-31
    pending = food(T0.date(), valid_from=dt.date(2025, 6, 1))  # its term begins later
    for replaced, latest in ((old, T0.date()), (pending, dt.date(2025, 6, 1))):
        before = table_rows(conn)
        with pytest.raises(InvalidInput) as info:
            food(T0.date(), replaces=replaced.id, valid_from=latest + dt.timedelta(days=1))
        assert (info.value.code, info.value.detail["field"]) == ("replacement_validity_gap", "valid_from")
        assert (
            info.value.detail["valid_from"] == latest.isoformat() and latest.isoformat() in info.value.message
        )
        assert info.value.detail["licence_id"] == replaced.id
        assert table_rows(conn) == before
        assert lib.get(replaced.id).status == "valid"
        replacement = food(T0.date(), replaces=replaced.id, valid_from=latest)
        assert replacement.is_usable(latest) and lib.get(replaced.id).status == "cancelled"


@pytest.mark.parametrize(("action", "verb"), [("revoke", "吊销"), ("cancel", "注销")])
def test_ending_a_licence_ends_its_renewal_not_yet_in_force(lib, conn, org, issuer, action, verb):
    """A renewal issued before the licence it renews ends begins the day after its last day: revoked or
    cancelled before then, the licence left its renewal to come into force on 2029-01-01 as if nothing had
    happened. Ending a licence now cancels (注销) every renewal of it not yet in force, and theirs, in the
    same transaction, whichever version of it or of the renewal stands; each with an event naming the
    licence it continued, what happened to it and why. A renewal ended itself leaves the renewed one."""
    code, name = issuer

    def food(issued: dt.date, **kwargs):
        return lib.issue(
            "food_business_licence", org.credit_code, org.name, food_face(org), code, name, issued, **kwargs
        )

    def status(record) -> str:
        return lib.get(record.id).status

    old = food(dt.date(2024, 1, 1))  # 2024-01-01 .. 2028-12-31
    renewal = food(T0.date(), renews=old.id)  # from 2029-01-01
    next_renewal = food(T0.date(), renews=renewal.id)  # renewed again before it began: from 2034-01-01
    getattr(lib, action)(old.id, "严重违法经营", "执法一队")
    ended = {"revoke": "revoked", "cancel": "cancelled"}[action]
    assert [status(r) for r in (old, renewal, next_renewal)] == [ended, "cancelled", "cancelled"]
    event = lib.get(renewal.id).history[-1]
    assert (event.from_status, event.status, event.actor, event.at) == ("valid", "cancelled", "执法一队", T0)
    assert old.licence_number in event.reason and verb in event.reason and "严重违法经营" in event.reason
    assert renewal.licence_number in lib.get(next_renewal.id).history[-1].reason
    assert lib.latest_usable(org.credit_code, "food_business_licence", dt.date(2029, 6, 1)) is None

    # whichever version stands: the licence replaced after it was renewed, the renewal replaced (and
    # suspended); the replacement of the renewed licence cancels the old version, not its renewal
    first = food(dt.date(2024, 6, 1))  # 2024-06-01 .. 2029-05-31
    renewal = food(T0.date(), renews=first.id)
    renewal_v2 = food(T0.date(), replaces=renewal.id)
    second = food(T0.date(), replaces=first.id)
    assert (status(first), status(renewal), status(renewal_v2)) == ("cancelled", "cancelled", "valid")
    lib.suspend(renewal_v2.id, "整改", "执法一队")
    getattr(lib, action)(second.id, "严重违法经营", "执法一队")
    assert (status(renewal_v2), lib.get(renewal_v2.id).history[-1].from_status) == ("cancelled", "suspended")
    assert second.licence_number in lib.get(renewal_v2.id).history[-1].reason

    # a renewal ended itself leaves the licence it renews; one in force stands when the renewed ends
    third = food(dt.date(2024, 9, 1))  # 2024-09-01 .. 2029-08-31
    renewal = food(T0.date(), renews=third.id)
    getattr(lib, action)(renewal.id, "申请人撤回", "窗口")
    assert status(third) == "valid"
    fourth = food(dt.date(2020, 9, 1))  # 2020-09-01 .. 2025-08-31
    renewal = food(T0.date(), renews=fourth.id)  # from 2025-09-01
    lib.cancel(fourth.id, "有效期届满，依法注销", "窗口", at=dt.datetime(2025, 9, 2, 2, tzinfo=dt.UTC))
    assert (status(fourth), status(renewal)) == ("cancelled", "valid")


def test_suspending_a_licence_suspends_its_renewal_not_yet_in_force_until_it_is_reinstated(
    lib, conn, org, issuer
):
    """A licence renewed early (the renewal from 2029-01-01) and suspended (暂扣) left its renewal valid: on
    2029-01-01 the renewal came into force, the suspension still running, and the sanction was
    circumvented. Suspending a licence now suspends its renewals not yet in force, and theirs, in the same
    transaction, each event naming the licence it continues, the reason, and (``caused_by``) the licence
    it was suspended with; they are used nowhere (forms, materials), the worker leaves them alone, and only
    reinstating that licence reinstates them: not on their own, and one suspended on its own account
    stays suspended."""
    code, name = issuer
    form = FormRegistry.load().get("apply.food_business")

    def food(issued: dt.date, **kwargs):
        return lib.issue(
            "food_business_licence", org.credit_code, org.name, food_face(org), code, name, issued, **kwargs
        )

    def status(record) -> str:
        return lib.get(record.id).status

    old = food(dt.date(2024, 1, 1))  # 2024-01-01 .. 2028-12-31
    renewal = food(T0.date(), renews=old.id)  # from 2029-01-01
    next_renewal = food(T0.date(), renews=renewal.id)  # from 2034-01-01
    lib.suspend(old.id, "责令停业整顿", "执法一队")
    assert [status(r) for r in (old, renewal, next_renewal)] == ["suspended"] * 3
    event = lib.get(renewal.id).history[-1]
    assert (event.from_status, event.status, event.actor, event.at) == ("valid", "suspended", "执法一队", T0)
    assert old.licence_number in event.reason and "暂扣" in event.reason and "责令停业整顿" in event.reason
    assert event.caused_by == old.id
    event = lib.get(next_renewal.id).history[-1]
    assert renewal.licence_number in event.reason and event.caused_by == renewal.id

    # the old term ends during the suspension: the renewal is not in force, as a suspended licence
    later = dt.date(2029, 6, 1)
    assert lib.expire_due(later) == 0 and status(renewal) == "suspended"
    assert lib.latest_usable(org.credit_code, "food_business_licence", later) is None
    read = licences_for_form(conn, lambda: T0, org.credit_code, form, later, set(), holder_kind=None)
    assert renewal.id in [x.id for x in read]
    filled = autofill(form, licences=read, today=later)
    skipped = {s.licence_number: s for reasons in filled.skipped.values() for s in reasons}
    assert skipped[renewal.licence_number].status == "suspended"
    assert "暂扣" in skipped[renewal.licence_number].message_zh
    assert not any(p.licence_id == renewal.id for p in filled.provenance.values())

    # not reinstated on its own while the licence it continues is suspended
    with pytest.raises(IllegalTransition) as info:
        lib.reinstate(renewal.id, "整改完成", "窗口")
    assert info.value.code == "illegal_transition" and info.value.detail["held_by"] == old.id
    assert old.licence_number in info.value.message and status(renewal) == "suspended"

    t1 = T0 + dt.timedelta(days=30)
    lib.reinstate(old.id, "整改完成", "执法一队", t1)
    assert [status(r) for r in (old, renewal, next_renewal)] == ["valid"] * 3
    event = lib.get(renewal.id).history[-1]
    assert (event.from_status, event.status, event.at) == ("suspended", "valid", t1)
    assert old.licence_number in event.reason and "整改完成" in event.reason
    assert lib.latest_usable(org.credit_code, "food_business_licence", later).id == renewal.id

    # one suspended on its own account stays suspended when the licence it continues is reinstated
    lib.suspend(renewal.id, "超范围经营", "执法二队", t1)  # suspends next_renewal with it
    assert lib.get(next_renewal.id).history[-1].caused_by == renewal.id
    lib.suspend(old.id, "责令停业整顿", "执法一队", t1)
    assert lib.get(renewal.id).history[-1].reason == "超范围经营"  # not suspended again
    lib.reinstate(old.id, "整改完成", "执法一队", t1)
    assert [status(r) for r in (old, renewal, next_renewal)] == ["valid", "suspended", "suspended"]
    lib.reinstate(renewal.id, "整改完成", "执法二队", t1)
    assert [status(r) for r in (renewal, next_renewal)] == ["valid", "valid"]
    # suspended on its own account first, then the licence it continues: not reinstated while that one is
    lib.suspend(renewal.id, "超范围经营", "执法二队", t1)
    lib.suspend(old.id, "责令停业整顿", "执法一队", t1)
    with pytest.raises(IllegalTransition) as held:
        lib.reinstate(renewal.id, "整改完成", "执法二队", t1)
    assert held.value.detail["held_by"] == old.id
    lib.reinstate(old.id, "整改完成", "执法一队", t1)
    lib.reinstate(renewal.id, "整改完成", "执法二队", t1)
    assert [status(r) for r in (old, renewal, next_renewal)] == ["valid", "valid", "valid"]


@pytest.mark.parametrize(("action", "verb"), [("revoke", "吊销"), ("cancel", "注销")])
def test_ending_a_suspended_licence_ends_the_renewals_suspended_with_it(lib, conn, org, issuer, action, verb):
    """Revoked or cancelled while suspended, a licence cancels its renewals suspended with it: those not
    yet in force, and one whose term began during the suspension (it never came into force); a renewal
    reinstated with its licence after the old term ended is in force."""
    code, name = issuer

    def food(issued: dt.date, **kwargs):
        return lib.issue(
            "food_business_licence", org.credit_code, org.name, food_face(org), code, name, issued, **kwargs
        )

    def status(record) -> str:
        return lib.get(record.id).status

    old = food(dt.date(2024, 1, 1))  # 2024-01-01 .. 2028-12-31
    renewal = food(T0.date(), renews=old.id)
    lib.suspend(old.id, "责令停业整顿", "执法一队")
    getattr(lib, action)(old.id, "严重违法经营", "执法一队")
    assert status(renewal) == "cancelled"
    event = lib.get(renewal.id).history[-1]
    assert (event.from_status, event.status) == ("suspended", "cancelled")
    assert old.licence_number in event.reason and verb in event.reason

    ending = food(dt.date(2020, 9, 1))  # 2020-09-01 .. 2025-08-31
    renewal = food(T0.date(), renews=ending.id)  # from 2025-09-01
    lib.suspend(ending.id, "责令停业整顿", "执法一队")
    after = dt.datetime(2025, 10, 1, 2, tzinfo=dt.UTC)  # the renewal's term has begun, suspended
    assert not lib.get(renewal.id).is_usable(after.date())
    getattr(lib, action)(ending.id, "严重违法经营", "执法一队", at=after)
    assert status(renewal) == "cancelled"

    # suspended on its own account before its term began: it never came into force either
    ending = food(dt.date(2020, 9, 1))
    renewal = food(T0.date(), renews=ending.id)  # from 2025-09-01
    lib.suspend(renewal.id, "超范围经营", "执法二队")
    lib.suspend(ending.id, "责令停业整顿", "执法一队")
    getattr(lib, action)(ending.id, "严重违法经营", "执法一队", at=after)
    assert status(renewal) == "cancelled"

    ending = food(dt.date(2020, 10, 1))  # 2020-10-01 .. 2025-09-30
    renewal = food(T0.date(), renews=ending.id)  # from 2025-10-01
    lib.suspend(ending.id, "责令停业整顿", "执法一队")
    lib.reinstate(ending.id, "整改完成", "执法一队", at=dt.datetime(2025, 10, 2, 2, tzinfo=dt.UTC))
    assert lib.get(renewal.id).is_usable(dt.date(2025, 10, 2))


@pytest.mark.parametrize("action", ["suspend", "revoke"])
def test_a_licence_past_its_last_day_is_expired_for_every_action(lib, conn, org, issuer, action):
    """Not yet marked by the worker, a licence past its last day is expired all the same: suspending it
    (the worker would then never expire it) or revoking it is refused; cancelling it is allowed."""
    old = food_licence_in(lib, org, issuer, "expired_unmarked")
    assert old.status == "valid"
    before = table_rows(conn)
    with pytest.raises(IllegalTransition) as info:
        getattr(lib, action)(old.id, "原因", "执法一队")
    assert (info.value.detail["status"], info.value.detail["action"]) == ("expired", action)
    assert old.licence_number in info.value.message
    assert table_rows(conn) == before
    assert lib.cancel(old.id, "有效期届满未延续，依法注销", "窗口").status == "cancelled"


def test_an_issuer_whose_credit_code_has_a_resident_ids_shape_issues(lib, org):
    code = "121101196005011081"  # a valid credit code that also passes as a resident ID
    record = lib.issue(
        "food_business_licence", org.credit_code, org.name, food_face(org), code, "北京市延庆区某事业单位",
        T0.date(),
    )  # fmt: skip
    assert record.issuer_credit_code == code


def test_an_id_valid_as_both_is_two_holders_each_with_its_own_licences(lib, issuer):
    """``121101196005011081`` is a valid resident ID and a valid credit code: a person's 居民身份证 and a
    事业单位's food licence may both be stored under it, each with its kind. Read by id alone, each was
    the other's; read with the holder's kind each has its own, and an id valid as both read without a
    kind has none (never guessed). An id of one kind is read as before."""
    both = "121101196005011081"
    police_code, police = demo_issuers()["police"]
    code, name = issuer
    person = lib.issue(
        "resident_id", both, "李某", {
            "name": "李某", "gender": "女", "ethnicity": "汉", "birth_date": "1960-05-01",
            "address": "福建省福州市仓山区上渡路8号", "id_number": both,
        }, police_code, police, dt.date(2020, 1, 1),
    )  # fmt: skip
    unit = replace(demo_organisations()[0], credit_code=both, name="福州市某某中心")
    org = lib.issue(
        "food_business_licence", both, unit.name, food_face(unit), code, name, dt.date(2024, 1, 1)
    )
    types = {"resident_id", "food_business_licence"}
    for kind, own in (("person", person), ("organisation", org)):
        assert [r.id for r in lib.by_holder(both, holder_kind=kind)] == [own.id]
        assert [r.id for r in lib.for_forms(both, types, T0.date(), holder_kind=kind)] == [own.id]
        assert lib.latest_usable(both, own.type_code, T0.date(), holder_kind=kind).id == own.id
        other = org if own is person else person
        assert lib.latest_usable(both, other.type_code, T0.date(), holder_kind=kind) is None
    assert lib.by_holder(both) == [] and lib.for_forms(both, types, T0.date()) == []
    assert lib.latest_usable(both, "resident_id", T0.date()) is None
    company = demo_organisations()[0]
    issue_business(lib, company, issuer)
    assert lib.by_holder(company.credit_code) == lib.by_holder(
        company.credit_code, holder_kind="organisation"
    )
    assert len(lib.by_holder(company.credit_code)) == 1
