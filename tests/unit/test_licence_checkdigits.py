"""Check characters of resident IDs (GB 11643), credit codes (GB 32100 / GB 11714) and ISO 7064 MOD 37,36."""

import datetime as dt
import random

import pytest

from engine.errors import InvalidInput
from licence.checkdigits import (
    CREDIT_CODE_ALPHABET,
    MAX_AGE_YEARS,
    MOD37_36_ALPHABET,
    credit_code_check_char,
    credit_code_problem,
    holder_id_kind,
    is_valid_credit_code,
    is_valid_mod37_36,
    is_valid_organisation_code,
    is_valid_resident_id,
    mod37_36_check_char,
    organisation_code_check_char,
    resident_id_check_char,
    resident_id_problem,
    validate_holder_id,
)
from licence.demo import make_credit_code, make_resident_id

GOOD_RESIDENT_ID = "11010519491231002X"
GOOD_CREDIT_CODE = "91350100M000100Y43"
# GRid identifiers (music industry) use ISO/IEC 7064 MOD 37,36; these are published valid examples.
GOOD_MOD37_36 = ["A12425GABC1234002M", "A12425GXYZ98760086", "A12425G1234567890L", "A12589KCCC2586482V"]


def corruptions(s: str, alphabet: str):
    for i, original in enumerate(s):
        for ch in alphabet:
            if ch != original:
                yield s[:i] + ch + s[i + 1 :]


def test_known_good_resident_id():
    assert resident_id_check_char(GOOD_RESIDENT_ID[:17]) == "X"
    assert is_valid_resident_id(GOOD_RESIDENT_ID)
    assert holder_id_kind(GOOD_RESIDENT_ID) == "resident_id"


def test_every_single_character_corruption_of_resident_id_is_rejected():
    bad = list(corruptions(GOOD_RESIDENT_ID, "0123456789X"))
    assert len(bad) == 18 * 10
    accepted = [s for s in bad if is_valid_resident_id(s) or holder_id_kind(s) is not None]
    assert accepted == []


def test_resident_id_rules_beyond_the_check_digit():
    def with_check(body: str) -> str:
        return body + resident_id_check_char(body)

    assert is_valid_resident_id(with_check("11010519491231002"))
    assert not is_valid_resident_id(with_check("11010519490231002"))  # 31 February... of 1949
    assert not is_valid_resident_id(with_check("11010519491331002"))  # month 13
    assert not is_valid_resident_id(with_check("99010519491231002"))  # no province 99
    assert not is_valid_resident_id(with_check("11000019491231002"))  # region 0000
    assert not is_valid_resident_id(with_check("11010517991231002"))  # born 1799
    assert not is_valid_resident_id(GOOD_RESIDENT_ID.lower())  # strict: canonical upper case only
    assert not is_valid_resident_id(GOOD_RESIDENT_ID[:17])
    assert not is_valid_resident_id("")


def test_known_good_credit_code_and_its_organisation_code():
    assert credit_code_check_char(GOOD_CREDIT_CODE[:17]) == "3"
    assert organisation_code_check_char("M000100Y") == "4"
    assert is_valid_organisation_code("M000100Y4")
    assert is_valid_credit_code(GOOD_CREDIT_CODE)
    assert holder_id_kind(GOOD_CREDIT_CODE) == "credit_code"


def test_every_single_character_corruption_of_credit_code_is_rejected():
    bad = list(corruptions(GOOD_CREDIT_CODE, CREDIT_CODE_ALPHABET))
    assert len(bad) == 18 * 30
    assert [s for s in bad if is_valid_credit_code(s) or holder_id_kind(s) is not None] == []


def test_credit_code_refuses_letters_outside_the_alphabet():
    for letter in "IOSVZ":
        assert not is_valid_credit_code(GOOD_CREDIT_CODE[:8] + letter + GOOD_CREDIT_CODE[9:])


def test_credit_code_with_right_gb32100_check_but_wrong_organisation_check_is_rejected():
    first17 = "91350100M000100Y5"  # organisation code check should be 4
    code = first17 + credit_code_check_char(first17)
    assert not is_valid_credit_code(code)
    with pytest.raises(InvalidInput) as info:
        validate_holder_id(code)
    assert info.value.code == "bad_check_digit"
    assert "GB 11714" in info.value.message


def test_organisation_code_check_can_be_x_and_zero():
    rng = random.Random(7)
    seen = set()
    for _ in range(2000):
        body = "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(8))
        check = organisation_code_check_char(body)
        assert is_valid_organisation_code(body + check)
        seen.add(check)
    assert {"X", "0"} <= seen


def test_mod37_36_known_values():
    for good in GOOD_MOD37_36:
        assert mod37_36_check_char(good[:-1]) == good[-1]
        assert is_valid_mod37_36(good)


def test_every_single_character_corruption_of_mod37_36_is_rejected():
    for good in GOOD_MOD37_36:
        bad = list(corruptions(good, MOD37_36_ALPHABET))
        assert [s for s in bad if is_valid_mod37_36(s)] == []


def test_mod37_36_detects_adjacent_transpositions():
    good = GOOD_MOD37_36[0]
    for i in range(len(good) - 1):
        if good[i] != good[i + 1]:
            swapped = good[:i] + good[i + 1] + good[i] + good[i + 2 :]
            assert not is_valid_mod37_36(swapped)


def test_mod37_36_round_trip_on_random_strings():
    rng = random.Random(1)
    for _ in range(500):
        s = "".join(rng.choice(MOD37_36_ALPHABET) for _ in range(rng.randrange(1, 40)))
        assert is_valid_mod37_36(s + mod37_36_check_char(s))


def test_mod37_36_refuses_characters_outside_its_alphabet():
    assert not is_valid_mod37_36("a12425gabc1234002m")
    assert not is_valid_mod37_36("M")
    with pytest.raises(ValueError):
        mod37_36_check_char("AB-1")
    with pytest.raises(ValueError):
        mod37_36_check_char("")


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("11010519491231002", "bad_format"),
        ("110105194912310021", "bad_check_digit"),
        ("11010519491331002X", "bad_birth_date"),
        ("91350100M000100Y44", "bad_check_digit"),
        ("91350100M000100Y4I", "bad_format"),
        ("91ABCDEFM000100Y43", "bad_region"),
        ("", "bad_format"),
    ],
)
def test_validate_holder_id_names_the_broken_rule(value, code):
    with pytest.raises(InvalidInput) as info:
        validate_holder_id(value, field="applicant.id")
    assert info.value.code == code
    assert info.value.detail["field"] == "applicant.id"
    assert any("\u4e00" <= ch <= "\u9fff" for ch in info.value.message)


def test_validate_holder_id_normalises_case_and_spaces():
    assert validate_holder_id(" 11010519491231002x ") == GOOD_RESIDENT_ID
    assert validate_holder_id("91350100m000100y43") == GOOD_CREDIT_CODE


def test_generated_demo_ids_pass():
    rng = random.Random(3)
    for _ in range(200):
        assert is_valid_resident_id(make_resident_id(rng))
        assert is_valid_credit_code(make_credit_code(rng))


# --- the rules of the standards beyond the check characters (GB 32100 table 1, GB/T 2260, GB 11643) --


TODAY = dt.date(2026, 12, 4)


def credit_code(first16: str) -> str:
    """``first16`` (authority, category, division, organisation code body) with both check characters."""
    first17 = first16 + organisation_code_check_char(first16[8:16])
    return first17 + credit_code_check_char(first17)


def resident_id(first17: str) -> str:
    return first17 + resident_id_check_char(first17)


def refusal(value: str, **kwargs) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        validate_holder_id(value, field="holder_id", **kwargs)
    assert info.value.detail["field"] == "holder_id"
    assert any("\u4e00" <= ch <= "\u9fff" for ch in info.value.message)
    return info.value


def test_an_all_zero_credit_code_is_refused_though_both_check_characters_hold():
    zeros = "0" * 18
    assert credit_code_check_char(zeros[:17]) == "0" and is_valid_organisation_code(zeros[8:17])
    assert not is_valid_credit_code(zeros) and holder_id_kind(zeros) is None
    assert credit_code_problem(zeros).code == "bad_registration_authority"
    assert refusal(zeros, expected="credit_code").code == "bad_registration_authority"
    assert refusal(zeros).code in {"bad_region", "bad_registration_authority"}  # either kind's rule


@pytest.mark.parametrize(
    ("authority", "categories"),
    [
        ("1", "1239"), ("2", "19"), ("3", "123459"), ("4", "19"), ("5", "1239"), ("6", "129"), ("7", "129"),
        ("8", "19"), ("9", "123"), ("A", "19"), ("N", "1239"), ("Y", "1"),
    ],
)  # fmt: skip
def test_credit_code_authority_and_category_follow_the_table(authority, categories):
    for category in CREDIT_CODE_ALPHABET:
        code = credit_code(f"{authority}{category}350102MA2XN4K8")
        problem = credit_code_problem(code)
        if category in categories:
            assert problem is None, code
        else:
            assert problem is not None and problem.code == "bad_organisation_category", code
            assert f"第 2 位“{category}”" in problem.message


def test_a_registration_authority_outside_the_table_is_refused():
    known = set("123456789ANY")
    for authority in CREDIT_CODE_ALPHABET:
        if authority in known:
            continue
        code = credit_code(f"{authority}1350102MA2XN4K8")
        problem = credit_code_problem(code)
        assert problem is not None and problem.code == "bad_registration_authority", code
        assert refusal(code, expected="credit_code").code == "bad_registration_authority"


@pytest.mark.parametrize("division", ["000000", "990000", "000102", "720101", "100101"])
def test_credit_code_division_must_be_plausible(division):
    code = credit_code(f"91{division}MA2XN4K8")
    assert credit_code_problem(code).code == "bad_region", code
    assert refusal(code).code == "bad_region"


@pytest.mark.parametrize("division", ["350102", "110000", "100000", "650000", "810000"])
def test_credit_code_divisions_that_exist_pass(division):
    assert is_valid_credit_code(credit_code(f"91{division}MA2XN4K8"))


def test_credit_code_organisation_code_has_its_own_check_character():
    good = credit_code("91350102MA2XN4K8")
    wrong_org = good[:16] + ("0" if good[16] != "0" else "1")
    wrong_org += credit_code_check_char(wrong_org)  # position 18 made right again: only GB 11714 breaks
    assert credit_code_check_char(wrong_org[:17]) == wrong_org[17]
    problem = credit_code_problem(wrong_org)
    assert problem.code == "bad_check_digit" and "GB 11714" in problem.message


def test_a_birth_date_after_today_is_refused():
    born_2099 = resident_id("11010520990101002")
    assert not is_valid_resident_id(born_2099) and holder_id_kind(born_2099) is None
    assert resident_id_problem(born_2099).code == "birth_date_in_future"
    assert refusal(born_2099).code == "birth_date_in_future"
    tomorrow = resident_id(f"110105{TODAY + dt.timedelta(days=1):%Y%m%d}002")
    born_today = resident_id(f"110105{TODAY:%Y%m%d}002")
    assert resident_id_problem(tomorrow, TODAY).code == "birth_date_in_future"
    assert is_valid_resident_id(born_today, TODAY)
    assert is_valid_resident_id(tomorrow, TODAY + dt.timedelta(days=1))  # the rule follows the day given
    assert refusal(tomorrow, today=TODAY).code == "birth_date_in_future"
    assert validate_holder_id(tomorrow, today=TODAY + dt.timedelta(days=1)) == tomorrow


def test_a_birth_date_absurdly_long_ago_is_refused():
    oldest = TODAY.replace(year=TODAY.year - MAX_AGE_YEARS)
    assert is_valid_resident_id(resident_id(f"110105{oldest:%Y%m%d}002"), TODAY)
    older = resident_id(f"110105{oldest - dt.timedelta(days=1):%Y%m%d}002")
    assert resident_id_problem(older, TODAY).code == "birth_date_too_early"
    assert refusal(older, today=TODAY).code == "birth_date_too_early"


@pytest.mark.parametrize("birth", ["19490230", "20230229", "19491300", "19490100", "00000000"])
def test_an_impossible_birth_date_is_refused(birth):
    value = resident_id(f"110105{birth}002")
    assert resident_id_problem(value, TODAY).code == "bad_birth_date"
    assert refusal(value, expected="resident_id").code == "bad_birth_date"


@pytest.mark.parametrize("division", ["000000", "110000", "990105", "710000", "910000"])
def test_a_resident_id_division_must_be_plausible(division):
    value = resident_id(f"{division}19491231002")
    assert resident_id_problem(value, TODAY).code == "bad_region"
    assert refusal(value, expected="resident_id").code == "bad_region"


def test_residence_permits_of_hong_kong_macao_and_taiwan_residents_pass():
    for region in ("810000", "820000", "830000"):
        assert is_valid_resident_id(resident_id(f"{region}19880808001"), TODAY)


def test_every_field_rule_of_the_forms_is_the_same_rule():
    """The form validators name the field by its label and carry the shared rule's code."""
    from forms.field_rules import check_value

    born_2099 = resident_id("11010520990101002")
    zeros = "0" * 18
    assert check_value("resident_id", "法定代表人身份证号", born_2099)[0] == "birth_date_in_future"
    assert check_value("identity_number", "证件号码", born_2099)[0] == "birth_date_in_future"
    assert check_value("credit_code", "统一社会信用代码", zeros)[0] == "bad_registration_authority"
    code, message = check_value("identity_number", "证件号码", credit_code("94350102MA2XN4K8"))
    assert code == "bad_organisation_category" and message.startswith("「证件号码」")
    assert check_value("resident_id", "身份证号", born_2099, dt.date(2099, 1, 1)) is None
    assert check_value("credit_code", "统一社会信用代码", GOOD_CREDIT_CODE) is None


def test_a_credit_code_with_a_resident_ids_shape_is_a_credit_code_where_one_is_expected():
    """A 事业单位's code (registration authority 1, category 2, division 110119, organisation code
    60050110-8) whose 18 digits also pass as a resident ID: where the kind is known, the kind decides."""
    from licence.checkdigits import holder_id_kind, is_holder_id_of

    code = "121101196005011081"
    today = dt.date(2025, 3, 3)
    assert is_valid_credit_code(code) and is_valid_resident_id(code, today)
    assert is_holder_id_of(code, "credit_code", today) and is_holder_id_of(code, "resident_id", today)
    assert holder_id_kind(code, today) == "resident_id"  # no kind known: the resident ID's reading first
    assert not is_holder_id_of("91350100M000100Y43", "resident_id", today)
    assert validate_holder_id(code, "issuer_credit_code", "credit_code", today) == code
