"""Identity documents and phone numbers: each kind valid and invalid, normalised, explained."""

import datetime as dt

import pytest
from flask_babel import force_locale

from clinic.patients.identity import (
    InvalidDocument,
    format_document,
    format_phone,
    normalise_phone,
    parse_document,
)

MISMATCH = "The check digit does not match the number: read the number on the card again."


@pytest.fixture
def request_context(app):
    with app.test_request_context():
        yield


def invalid(kind, number, country=None, date_of_birth=None) -> str:
    with pytest.raises(InvalidDocument) as raised:
        parse_document(kind, number, country, date_of_birth)
    return str(raised.value)


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("A123456(3)", "A1234563"),
        ("E364912(5)", "E3649125"),
        ("AB987654(3)", "AB9876543"),
        ("G123456(A)", "G123456A"),
        ("X354670(0)", "X3546700"),
        ("a1234563", "A1234563"),
        ("A123456 3", "A1234563"),
        (" g123456a ", "G123456A"),
    ],
)
def test_hkid_accepts_the_ways_people_type_it_and_stores_it_plain(request_context, typed, stored):
    document = parse_document("hkid", typed)
    assert (document.number, document.identity_key) == (stored, stored)


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("A123456(4)", MISMATCH),
        ("G123456(0)", MISMATCH),
        ("AB987654(1)", MISMATCH),
        ("A12345(3)", "An HKID number is one or two letters, six digits and a check digit"),
        ("1234567(3)", "An HKID number is one or two letters"),
        ("ABC123456(3)", "An HKID number is one or two letters"),
    ],
)
def test_hkid_mistakes_say_exactly_what_is_wrong(request_context, typed, message):
    assert invalid("hkid", typed).startswith(message)


@pytest.mark.parametrize(
    ("kind", "typed", "expected"),
    [("hkid", "A123456(4)", "3"), ("cn_id", "110105194912310021", "X")],
)
def test_check_digit_messages_never_give_the_answer(app, kind, typed, expected):
    # Copying a suggested digit would let a mistyped digit inside the number pass.
    for locale in ("en", "zh_Hant_HK", "zh_Hans_CN"):
        with app.test_request_context(), force_locale(locale):
            message = invalid(kind, typed)
        assert expected not in message


def test_hkid_message_in_chinese(app):
    with app.test_request_context(), force_locale("zh_Hant_HK"):
        assert invalid("hkid", "A123456(4)") == "檢查碼與號碼不符：請再核對證件上的號碼。"
    with app.test_request_context(), force_locale("zh_Hans_CN"):
        assert invalid("hkid", "A123456(4)") == "校验码与号码不符：请重新核对证件上的号码。"


def test_mainland_resident_id_checked_with_iso_7064(request_context):
    document = parse_document("cn_id", "11010519491231002x", date_of_birth=dt.date(1949, 12, 31))
    assert document.number == "11010519491231002X"
    assert document.warnings == []
    assert invalid("cn_id", "110105194912310021") == MISMATCH
    assert invalid("cn_id", "11010519491231002").startswith("A resident ID or residence permit")


def test_hk_and_macao_residence_permits_are_valid_whatever_the_birth_year(request_context):
    # stdnum's ric.validate() refuses these (area codes dated 1997/1999); the checksum is right.
    assert parse_document("cn_id", "810000196001010015").number == "810000196001010015"
    macao = "82000019580506002"
    from stdnum.iso7064 import mod_11_2

    assert parse_document("cn_id", macao + mod_11_2.calc_check_digit(macao)).warnings == []
    nansha = "44011519900101001"
    assert parse_document("cn_id", nansha + mod_11_2.calc_check_digit(nansha))


def test_resident_id_birth_date_differing_from_date_of_birth_is_a_warning(request_context):
    document = parse_document("cn_id", "810000196001010015", date_of_birth=dt.date(1960, 1, 2))
    assert document.number == "810000196001010015"
    assert document.warnings == [
        "The birth date in this number is 1 Jan 1960, not the date of birth entered."
    ]


def test_resident_id_with_an_impossible_birth_date(request_context):
    body = "11010519491331002"
    from stdnum.iso7064 import mod_11_2

    message = invalid("cn_id", body + mod_11_2.calc_check_digit(body))
    assert "19491331 is not a date" in message


def test_macao_id_format_with_slashes_or_brackets(request_context):
    assert parse_document("mo_id", "1/234567/8").number == "12345678"
    assert parse_document("mo_id", "5234567(8)").number == "52345678"
    assert format_document("mo_id", "12345678") == "1/234567/8"
    assert invalid("mo_id", "2234567(8)").startswith("A Macao ID number is 8 digits")
    assert invalid("mo_id", "123456(7)").startswith("A Macao ID number")


def test_home_return_permit_identity_is_the_first_nine_characters(request_context):
    renewed = parse_document("home_return", "H12345678 01")
    assert (renewed.number, renewed.identity_key) == ("H1234567801", "H12345678")
    assert parse_document("home_return", "m87654321").identity_key == "M87654321"
    assert invalid("home_return", "H1234567").startswith("A Home Return Permit number is H or M")
    assert invalid("home_return", "K12345678").startswith("A Home Return Permit")
    assert invalid("home_return", "H123456789").startswith("A Home Return Permit")


def test_exit_entry_permit_old_and_new_ranges(request_context):
    assert parse_document("exit_entry", "C12345678").number == "C12345678"
    assert parse_document("exit_entry", "ca1234567").number == "CA1234567"
    assert invalid("exit_entry", "CI1234567").startswith("An Exit-Entry Permit number is C")
    assert invalid("exit_entry", "D12345678").startswith("An Exit-Entry Permit")
    assert invalid("exit_entry", "C1234567").startswith("An Exit-Entry Permit")


def test_passport_is_free_form_with_its_issuing_country(request_context):
    document = parse_document("passport", "k 1234 5678", country="gbr")
    assert (document.number, document.country, document.identity_key) == (
        "K12345678",
        "GBR",
        "GBR:K12345678",
    )
    assert invalid("passport", "K1234567", country="") == (
        "Enter the issuing country as its 3-letter code, e.g. GBR or PHL."
    )
    assert invalid("passport", "K12", country="GBR").startswith("A passport number is 5 to 20")


def test_empty_number(request_context):
    assert invalid("hkid", "  ") == "Enter the document number."


@pytest.mark.parametrize(
    ("typed", "e164", "shown"),
    [
        ("9123 4567", "+85291234567", "+852 9123 4567"),
        ("+852 9123-4567", "+85291234567", "+852 9123 4567"),
        ("00852 2345 6789", "+85223456789", "+852 2345 6789"),
        ("+853 6612 3456", "+85366123456", "+853 6612 3456"),
        ("138 0013 8000", "+8613800138000", "+86 138 0013 8000"),
        ("+86 138-0013-8000", "+8613800138000", "+86 138 0013 8000"),
    ],
)
def test_phones_normalised_to_e164(request_context, typed, e164, shown):
    assert normalise_phone(typed) == e164
    assert format_phone(e164) == shown


@pytest.mark.parametrize(
    "typed", ["1234567", "+852 1234 5678", "+853 123", "+86 238 0013 8000", "66123456x"]
)
def test_wrong_phones_are_refused(request_context, typed):
    with pytest.raises(InvalidDocument):
        normalise_phone(typed)
