"""Identity documents and phone numbers: validated, normalised, explained in the user's language.

`parse_document(kind, text, country, date_of_birth)` returns a `Document` (number as stored, the
identity key that survives renewals, warnings) or raises `InvalidDocument` with a message that
says exactly what is wrong. Sources and traps: docs in /work/shared/reference/ecosystem.md §2.
"""

import datetime as dt
import re
from dataclasses import dataclass, field

from flask_babel import format_date
from stdnum.cn import ric
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.iso7064 import mod_11_2

from clinic.translation import gettext as _
from clinic.translation import lazy_gettext as _l

HKID, CN_ID, MO_ID, HOME_RETURN, EXIT_ENTRY, PASSPORT = (
    "hkid",
    "cn_id",
    "mo_id",
    "home_return",
    "exit_entry",
    "passport",
)


class InvalidDocument(ValueError):
    """The number cannot be right; str(error) is the translated message for the user."""


@dataclass
class Document:
    kind: str
    number: str  # as stored: upper case, no spaces, brackets or slashes
    identity_key: str  # the part that stays the same across renewals
    country: str | None = None
    warnings: list[str] = field(default_factory=list)


def compact(text: str) -> str:
    """Upper case without the spaces, brackets, slashes and dashes people type around numbers."""
    return re.sub(r"[\s()/\-.]", "", text or "").upper()


CHECK_DIGIT_MISMATCH = _l(
    "The check digit does not match the number: read the number on the card again."
)

# HKID -----
HKID_FORMAT = re.compile(r"^([A-Z]{1,2})(\d{6})([0-9A])$")


def hkid_check_digit(letters: str, digits: str) -> str:
    """Mod 11 over (space-padded) letters and digits, weights 9…2; 10 is written A."""
    padded = letters.rjust(2)
    values = [36 if c == " " else ord(c) - ord("A") + 10 for c in padded]
    values += [int(d) for d in digits]
    total = sum(v * w for v, w in zip(values, range(9, 1, -1), strict=True))
    check = (11 - total % 11) % 11
    return "A" if check == 10 else str(check)


def parse_hkid(text: str) -> Document:
    number = compact(text)
    found = HKID_FORMAT.match(number)
    if not found:
        raise InvalidDocument(
            _(
                "An HKID number is one or two letters, six digits and a check digit, "
                "e.g. A123456(3)."
            )
        )
    letters, digits, check = found.groups()
    if check != hkid_check_digit(letters, digits):
        # Never the expected digit: copying it would let a mistyped digit inside pass.
        raise InvalidDocument(str(CHECK_DIGIT_MISMATCH))
    return Document(HKID, number, number)


def format_hkid(number: str) -> str:
    return f"{number[:-1]}({number[-1]})"


# Mainland Resident ID and HK/Macao residence permits (GB 11643) -----
CN_ID_FORMAT = re.compile(r"^\d{17}[0-9X]$")


def parse_cn_id(text: str, date_of_birth: dt.date | None = None) -> Document:
    number = compact(text)
    if not CN_ID_FORMAT.match(number):
        raise InvalidDocument(
            _(
                "A resident ID or residence permit number has 18 characters: "
                "17 digits and a check character (0-9 or X)."
            )
        )
    # Not ric.validate(): it rejects real 810000/820000 permits and older Nansha numbers.
    if not mod_11_2.is_valid(number):
        raise InvalidDocument(str(CHECK_DIGIT_MISMATCH))
    try:
        born = ric.get_birth_date(number)
    except StdnumError:
        raise InvalidDocument(
            _("Characters 7 to 14 should be the birth date (YYYYMMDD); %(text)s is not a date.")
            % {"text": number[6:14]}
        ) from None
    document = Document(CN_ID, number, number)
    if date_of_birth and born != date_of_birth:
        document.warnings.append(
            _(
                "The birth date in this number is %(born)s, not the date of birth entered.",
                born=format_date(born, "medium"),
            )
        )
    return document


def _checked_by_format(kind: str, pattern: str, message, identity_length: int | None = None):
    """A parser for a document that has a published format but no check digit."""
    number_format = re.compile(pattern)

    def parse(text: str) -> Document:
        number = compact(text)
        if not number_format.match(number):
            raise InvalidDocument(str(message))
        return Document(kind, number, number[:identity_length])

    return parse


# Macao Resident Identity Card: "1/234567/8" and "1234567(8)" both become 12345678 -----
parse_mo_id = _checked_by_format(
    MO_ID,
    r"^[157]\d{6}\d$",
    _l("A Macao ID number is 8 digits starting with 1, 5 or 7, e.g. 1234567(8)."),
)


def format_mo_id(number: str) -> str:
    return f"{number[0]}/{number[1:7]}/{number[7]}"


# Mainland Travel Permit for HK/Macao residents (Home Return Permit): the identity is the
# lifelong first 9 characters, without the renewal count -----
parse_home_return = _checked_by_format(
    HOME_RETURN,
    r"^[HM]\d{8}(\d{2})?$",
    _l(
        "A Home Return Permit number is H or M and 8 digits, optionally followed by "
        "the 2-digit renewal count, e.g. H12345678."
    ),
    identity_length=9,
)

# Exit-Entry Permit for travelling to and from HK and Macao -----
parse_exit_entry = _checked_by_format(
    EXIT_ENTRY,
    r"^C[0-9A-HJ-NP-Z]\d{7}$",
    _l(
        "An Exit-Entry Permit number is C and 8 more characters "
        "(digits, or a letter then 7 digits), e.g. C12345678 or CA1234567."
    ),
)


# Passport -----
PASSPORT_FORMAT = re.compile(r"^[A-Z0-9]{5,20}$")
COUNTRY_FORMAT = re.compile(r"^[A-Z]{3}$")


def parse_passport(text: str, country: str | None) -> Document:
    number = compact(text)
    if not PASSPORT_FORMAT.match(number):
        raise InvalidDocument(_("A passport number is 5 to 20 letters and digits."))
    country = (country or "").strip().upper()
    if not COUNTRY_FORMAT.match(country):
        raise InvalidDocument(_("Enter the issuing country as its 3-letter code, e.g. GBR or PHL."))
    # The same number may be issued by two countries: the country is part of the identity.
    return Document(PASSPORT, number, f"{country}:{number}", country=country)


def parse_document(
    kind: str, text: str, country: str | None = None, date_of_birth: dt.date | None = None
) -> Document:
    if not compact(text):
        raise InvalidDocument(_("Enter the document number."))
    if kind == HKID:
        return parse_hkid(text)
    if kind == CN_ID:
        return parse_cn_id(text, date_of_birth)
    if kind == MO_ID:
        return parse_mo_id(text)
    if kind == HOME_RETURN:
        return parse_home_return(text)
    if kind == EXIT_ENTRY:
        return parse_exit_entry(text)
    if kind == PASSPORT:
        return parse_passport(text, country)
    raise InvalidDocument(_("Choose the document type."))


def format_document(kind: str, number: str) -> str:
    """The number as printed on the document."""
    if kind == HKID:
        return format_hkid(number)
    if kind == MO_ID and len(number) == 8:
        return format_mo_id(number)
    return number


# Phones -----
PHONE_RULES = (
    # (country code, national digits, pattern of the national number)
    ("852", re.compile(r"^[2-9]\d{7}$")),
    ("853", re.compile(r"^\d{8}$")),
    ("86", re.compile(r"^1\d{10}$")),
)


def normalise_phone(text: str) -> str:
    """+852 / +853 numbers of 8 digits, +86 mobiles of 11 digits, as E.164 (+85291234567).

    Without a country code, 8 digits are taken as Hong Kong and 11 digits starting with 1 as a
    mainland mobile; a Macao number needs its +853.
    """
    raw = re.sub(r"[\s()\-.]", "", text or "")
    if not raw:
        raise InvalidDocument(_("Enter the phone number."))
    international = raw.startswith(("+", "00"))
    digits = raw.lstrip("+").removeprefix("00") if international else raw
    if not digits.isdigit():
        raise InvalidDocument(_("A phone number has only digits, spaces and a leading +."))
    candidates = PHONE_RULES if international else ()
    for code, pattern in candidates:
        if digits.startswith(code) and pattern.match(digits[len(code) :]):
            return f"+{digits}"
    if not international:
        if PHONE_RULES[0][1].match(digits):
            return f"+852{digits}"
        if PHONE_RULES[2][1].match(digits):
            return f"+86{digits}"
    raise InvalidDocument(
        _(
            "Enter a Hong Kong (+852, 8 digits), Macao (+853, 8 digits) or mainland "
            "mobile number (+86, 11 digits starting with 1)."
        )
    )


def format_phone(e164: str | None) -> str:
    """+85291234567 → +852 9123 4567; +8613800138000 → +86 138 0013 8000."""
    if not e164:
        return ""
    for code, _pattern in PHONE_RULES:
        national = e164.removeprefix(f"+{code}")
        if national != e164:
            if len(national) == 8:
                return f"+{code} {national[:4]} {national[4:]}"
            if len(national) == 11:
                return f"+{code} {national[:3]} {national[3:7]} {national[7:]}"
    return e164
