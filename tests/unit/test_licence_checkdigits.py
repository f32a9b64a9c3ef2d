"""Check characters of resident IDs (GB 11643), credit codes (GB 32100 / GB 11714) and ISO 7064 MOD 37,36."""

import random

import pytest

from engine.errors import InvalidInput
from licence.checkdigits import (
    CREDIT_CODE_ALPHABET,
    MOD37_36_ALPHABET,
    credit_code_check_char,
    holder_id_kind,
    is_valid_credit_code,
    is_valid_mod37_36,
    is_valid_organisation_code,
    is_valid_resident_id,
    mod37_36_check_char,
    organisation_code_check_char,
    resident_id_check_char,
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
        ("11010519491331002X", "bad_format"),
        ("91350100M000100Y44", "bad_check_digit"),
        ("91350100M000100Y4I", "bad_format"),
        ("91ABCDEFM000100Y43", "bad_format"),
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
