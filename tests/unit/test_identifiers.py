"""GB identifier rules: DESIGN vectors, check characters, lenient reading and routing."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.certificate.identifiers import (
    OID_ROOT,
    USCC,
    Checked,
    IdNumber,
    LicenceId,
    Region,
    build_licence_id,
    check_identifier,
    id_number_check_char,
    mod37_36_check_char,
    parse_id_number,
    parse_licence_id,
    parse_region,
    parse_uscc,
    uscc_check_char,
)
from registry.errors import IdentifierError

VECTOR_F = "1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.F"
VECTOR_U = "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.U"
USCC_OK = "91110000600037341L"
ID_OK = "11010519491231002X"
TODAY = datetime.date(2024, 6, 1)

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
MOD37_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
PROVINCES = [
    "11",
    "12",
    "13",
    "14",
    "15",
    "21",
    "22",
    "23",
    "31",
    "32",
    "33",
    "34",
    "35",
    "36",
    "37",
    "41",
    "42",
    "43",
    "44",
    "45",
    "46",
    "50",
    "51",
    "52",
    "53",
    "54",
    "61",
    "62",
    "63",
    "64",
    "65",
    "71",
    "81",
    "82",
]
FAST = settings(max_examples=40, database=None, deadline=None)


def _with_check(code: str, check: str) -> str:
    return code[:-1] + check


def _id_number(body17: str) -> str:
    return body17 + id_number_check_char(body17)


def _raises(code: str, fn: object, *args: object, **kwargs: object) -> IdentifierError:
    with pytest.raises(IdentifierError) as info:
        fn(*args, **kwargs)  # type: ignore[operator]
    assert info.value.code == code, info.value.message
    return info.value


def _assert_check_error(err: IdentifierError, expected: str) -> None:
    assert err.code == "ID_CHECK_CHAR"
    assert f"expected {expected!r}" in err.message
    assert err.details["expected"] == expected


# --- strategies ------------------------------------------------------------------------------

regions = st.builds(
    lambda p, pref, county: p + pref + ("00" if pref == "00" else county),
    st.sampled_from(PROVINCES),
    st.sampled_from(["00", "01", "02", "10", "90"]),
    st.sampled_from(["00", "01", "02", "06", "81"]),
)
usccs = st.builds(
    lambda head, region, tail: (head + region + tail) + uscc_check_char(head + region + tail),
    st.text(USCC_ALPHABET, min_size=2, max_size=2),
    regions,
    st.text(USCC_ALPHABET, min_size=9, max_size=9),
)


# --- DESIGN vectors --------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "check"), [(VECTOR_F, "F"), (VECTOR_U, "U")])
def test_design_vectors_are_valid(text: str, check: str) -> None:
    lic = parse_licence_id(text)
    assert lic.check == check
    assert lic.version == 1
    assert str(lic) == text
    assert mod37_36_check_char(lic.payload) == check
    assert build_licence_id(lic.type_code, lic.issuer, lic.serial, 1) == lic


def test_vector_parts() -> None:
    lic = parse_licence_id(VECTOR_F)
    assert lic == LicenceId("11100000000013338W032", "11220000013544541J", "2430599", 1, "F")
    authority = parse_uscc(lic.type_code[:18])
    assert authority.region == "100000"  # central bodies register at national level


def test_uscc_and_id_vectors() -> None:
    assert parse_uscc(USCC_OK) == USCC(USCC_OK, "9", "1", "110000")
    assert uscc_check_char(USCC_OK[:17]) == "L"
    person = parse_id_number(ID_OK, today=TODAY)
    assert person == IdNumber(ID_OK, "110105", datetime.date(1949, 12, 31), "F")
    assert id_number_check_char(ID_OK[:17]) == "X"


# --- wrong check characters name the expected one --------------------------------------------


@pytest.mark.parametrize("strict", [True, False])
def test_licence_wrong_check_names_expected(strict: bool) -> None:
    err = _raises("ID_CHECK_CHAR", parse_licence_id, _with_check(VECTOR_F, "G"), strict=strict)
    _assert_check_error(err, "F")
    assert "'G'" in err.message


@pytest.mark.parametrize("strict", [True, False])
def test_uscc_wrong_check_names_expected(strict: bool) -> None:
    err = _raises("ID_CHECK_CHAR", parse_uscc, _with_check(USCC_OK, "M"), strict=strict)
    _assert_check_error(err, "L")


@pytest.mark.parametrize("strict", [True, False])
def test_id_number_wrong_check_names_expected(strict: bool) -> None:
    err = _raises("ID_CHECK_CHAR", parse_id_number, _with_check(ID_OK, "5"), strict=strict)
    _assert_check_error(err, "X")
    assert ID_OK not in err.message  # personal data stays out of error messages


def test_embedded_uscc_check_is_verified() -> None:
    bad = VECTOR_F.replace("11220000013544541J", "11220000013544541K")
    _assert_check_error(_raises("ID_CHECK_CHAR", parse_licence_id, bad), "J")


# --- property tests --------------------------------------------------------------------------


@FAST
@given(usccs)
def test_uscc_round_trip_and_any_check_change_rejected(code: str) -> None:
    parsed = parse_uscc(code)
    assert parsed.code == code and parsed.region == code[2:8]
    for wrong in USCC_ALPHABET.replace(code[17], ""):
        with pytest.raises(IdentifierError) as info:
            parse_uscc(_with_check(code, wrong))
        _assert_check_error(info.value, code[17])


@FAST
@given(
    usccs,
    st.text("0123456789", min_size=3, max_size=3),
    usccs,
    st.text(MOD37_ALPHABET, min_size=1, max_size=20),
    st.integers(1, 999),
)
def test_licence_build_parse_round_trip(
    authority: str, suffix: str, issuer: str, serial: str, version: int
) -> None:
    lic = build_licence_id(authority + suffix, issuer, serial, version)
    assert parse_licence_id(str(lic)) == lic
    for wrong in MOD37_ALPHABET.replace(lic.check, ""):
        with pytest.raises(IdentifierError) as info:
            parse_licence_id(_with_check(str(lic), wrong))
        _assert_check_error(info.value, lic.check)


# --- regions, dates, formats -----------------------------------------------------------------


@pytest.mark.parametrize("code", ["990000", "100100", "000000", "160000", "330006"])
def test_bad_region(code: str) -> None:
    _raises("ID_REGION", parse_region, code)


@pytest.mark.parametrize("code", ["3301", "33010a", "3301000", "", 12])
def test_region_format(code: str | int) -> None:
    _raises("ID_FORMAT", parse_region, code)


def test_region_levels_and_int_input() -> None:
    assert parse_region(330000).level == "province"
    assert parse_region("330100") == Region("330100", "33", "01", "00")
    assert parse_region("330100").level == "prefecture"
    assert parse_region("330106").level == "county"
    assert parse_region("100000").level == "national"


def test_region_governs() -> None:
    zhejiang, hangzhou, xihu = parse_region("330000"), parse_region("330100"), parse_region("330106")
    assert zhejiang.governs("330106") and zhejiang.governs(hangzhou) and zhejiang.governs(zhejiang)
    assert hangzhou.governs(xihu) and hangzhou.governs("330100")
    assert not hangzhou.governs("330200") and not hangzhou.governs(zhejiang)
    assert xihu.governs("330106") and not xihu.governs("330105") and not xihu.governs(hangzhou)
    assert not zhejiang.governs("320000")
    assert parse_region("100000").governs("650102")


def test_id_number_bad_region_and_uscc_bad_region() -> None:
    _raises("ID_REGION", parse_id_number, _id_number("99010519491231002"), today=TODAY)
    _raises("ID_REGION", parse_id_number, _id_number("10000019491231002"), today=TODAY)
    body = "91990000600037341"
    _raises("ID_REGION", parse_uscc, body + uscc_check_char(body))


def test_impossible_and_future_birth_dates() -> None:
    err = _raises("ID_DATE", parse_id_number, _id_number("11010519490230002"), today=TODAY)
    assert "19490230" in err.message
    future = _id_number("11010520240602002")
    _raises("ID_DATE", parse_id_number, future, today=TODAY)
    assert parse_id_number(future, today=datetime.date(2024, 6, 2)).birth_date.day == 2


def test_id_number_sex_and_mask() -> None:
    male = _id_number("33010619900101123")
    person = parse_id_number(male, today=TODAY)
    assert person.sex == "M" and person.region == "330106"
    assert person.masked == "3301**********" + male[-4:]
    assert parse_id_number(ID_OK, today=TODAY).masked == "1101**********002X"


@pytest.mark.parametrize("text", ["9111000060003734", "91110000600037341I", "91110000600037341LL"])
def test_uscc_format(text: str) -> None:
    _raises("ID_FORMAT", parse_uscc, text)


@pytest.mark.parametrize(
    ("text", "warning"),
    [
        (f"  {USCC_OK}\n", "whitespace"),
        (USCC_OK.lower(), "lowercase"),
        ("９１１１００００６０００３７３４１Ｌ", "full-width"),
    ],
)
def test_uscc_lenient_warns_and_strict_raises(text: str, warning: str) -> None:
    checked = check_identifier(text)
    assert checked.kind == "uscc" and checked.value == parse_uscc(USCC_OK)
    assert any(warning in w for w in checked.warnings)
    assert parse_uscc(text, strict=False).code == USCC_OK
    err = _raises("ID_FORMAT", parse_uscc, text, strict=True)
    assert USCC_OK in err.message  # tells the sender the canonical form


def test_id_number_lowercase_x() -> None:
    checked = check_identifier(ID_OK.lower())
    assert checked.kind == "id_number" and checked.warnings == ("lowercase letters upper-cased",)
    _raises("ID_FORMAT", parse_id_number, ID_OK.lower(), today=TODAY)


def test_licence_lenient_repairs() -> None:
    rootless = VECTOR_F[len(OID_ROOT) + 1 :]
    checked = check_identifier(rootless)
    assert checked.kind == "licence" and str(checked.value) == VECTOR_F
    assert any("OID root" in w for w in checked.warnings)
    _raises("ID_FORMAT", parse_licence_id, rootless)
    wide = " " + VECTOR_U.lower().replace(".", "．") + "\u3000"
    assert parse_licence_id(wide, strict=False) == parse_licence_id(VECTOR_U)
    assert len(check_identifier(wide).warnings) == 3
    _raises("ID_FORMAT", parse_licence_id, wide)
    _raises("ID_FORMAT", check_identifier, wide, strict=True)


@pytest.mark.parametrize(
    "text",
    [
        "1.2.156.3005.3.11100000000013338W032.11220000013544541J.2430599.001.F",
        VECTOR_F.replace(".001.", ".1."),
        VECTOR_F.replace(".001.", ".000."),
        VECTOR_F.replace(".2430599.", ".24-0599."),
        VECTOR_F + ".X",
        VECTOR_F[:-2],
    ],
)
def test_licence_format(text: str) -> None:
    _raises("ID_FORMAT", parse_licence_id, text)


# --- building and versions -------------------------------------------------------------------


def test_next_version_increments_and_changes_check() -> None:
    lic = parse_licence_id(VECTOR_F)
    nxt = lic.next_version()
    assert nxt.version == 2 and nxt.check != lic.check
    assert str(nxt).endswith(f".2430599.002.{nxt.check}")
    assert parse_licence_id(str(nxt)) == nxt
    last = build_licence_id(lic.type_code, lic.issuer, lic.serial, 999)
    _raises("ID_FORMAT", last.next_version)


@pytest.mark.parametrize(
    ("type_code", "issuer", "serial", "version", "code"),
    [
        ("11100000000013338W03", "11220000013544541J", "1", 1, "ID_FORMAT"),
        ("11100000000013338W03A", "11220000013544541J", "1", 1, "ID_FORMAT"),
        ("11100000000013338X032", "11220000013544541J", "1", 1, "ID_CHECK_CHAR"),
        ("11100000000013338W032", "11220000013544541K", "1", 1, "ID_CHECK_CHAR"),
        ("11100000000013338W032", "11220000013544541J", "abc", 1, "ID_FORMAT"),
        ("11100000000013338W032", "11220000013544541J", "", 1, "ID_FORMAT"),
        ("11100000000013338W032", "11220000013544541J", "1", 0, "ID_FORMAT"),
        ("11100000000013338W032", "11220000013544541J", "1", 1000, "ID_FORMAT"),
    ],
)
def test_build_is_strict(type_code: str, issuer: str, serial: str, version: int, code: str) -> None:
    _raises(code, build_licence_id, type_code, issuer, serial, version)


def test_check_functions_reject_bad_input() -> None:
    _raises("ID_FORMAT", mod37_36_check_char, "")
    _raises("ID_FORMAT", mod37_36_check_char, "ab")
    _raises("ID_FORMAT", uscc_check_char, "9111000060003734O")
    _raises("ID_FORMAT", id_number_check_char, "1101051949123100")


# --- routing ---------------------------------------------------------------------------------


def test_check_identifier_routing() -> None:
    assert check_identifier(VECTOR_U) == Checked("licence", parse_licence_id(VECTOR_U), ())
    assert check_identifier(USCC_OK) == Checked("uscc", parse_uscc(USCC_OK), ())
    assert check_identifier(ID_OK).kind == "id_number"
    assert check_identifier("330106") == Checked("region", parse_region("330106"), ())
    assert check_identifier(VECTOR_U, strict=True).warnings == ()
    _raises("ID_FORMAT", check_identifier, "hello")
    _raises("ID_CHECK_CHAR", check_identifier, _with_check(ID_OK, "1"))
    _raises("ID_CHECK_CHAR", check_identifier, _with_check(USCC_OK, "1"))


def test_all_digit_uscc_that_looks_like_id_number_routes_to_uscc() -> None:
    for n in range(1000):
        body = f"12110119900101{n:03d}"  # chars 7-14 read as 1990-01-01
        code = body + uscc_check_char(body)
        if code[17].isdigit() and id_number_check_char(body) != code[17]:
            break
    checked = check_identifier(code)
    assert checked.kind == "uscc" and checked.value == parse_uscc(code)
