"""GB identifiers used by e-certificates: parse, validate and build them without any I/O.

* e-licence identifier (GB/T 36904) with its ISO/IEC 7064 MOD 37,36 check character;
* 统一社会信用代码 USCC (GB 32100), 公民身份号码 (GB 11643), region codes (GB/T 2260).

Issuing is strict (anything non-canonical raises). Reading identifiers made by other systems
is lenient: whitespace, full-width characters, lowercase and a missing OID root are repaired and
reported as warnings, but a wrong check character is always an error.
"""

from __future__ import annotations

import datetime
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from registry.error_codes import ErrorCode
from registry.errors import IdentifierError

OID_ROOT = "1.2.156.3005.2"
NATIONAL_REGION = "100000"  # region code carried by USCCs of central-government bodies

_MOD37_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_MOD37_VALUES = {c: i for i, c in enumerate(_MOD37_ALPHABET)}
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I, O, Z, S, V
_USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_PROVINCES = frozenset(
    f"{p:02d}"
    for p in (
        *range(11, 16),
        *range(21, 24),
        *range(31, 38),
        *range(41, 47),
        *range(50, 55),
        *range(61, 66),
        71,
        81,
        82,
    )
)
_SERIAL_RE = re.compile(r"[0-9A-Z]+")


def _fail(message: str, code: ErrorCode, **details: object) -> IdentifierError:
    return IdentifierError(message, code=code, **details)


def _check_mismatch(what: str, actual: str, expected: str, text: str) -> IdentifierError:
    """Name the expected character: the usual cause is a typo, and the fix is to re-read the source."""
    return _fail(
        f"{what} {text!r}: check character is {actual!r}, expected {expected!r}; "
        "re-check the identifier against its source document",
        ErrorCode.ID_CHECK_CHAR,
        expected=expected,
        actual=actual,
        value=text,
    )


def _normalise(text: object, what: str, strict: bool) -> tuple[str, list[str]]:
    """Repair what other systems commonly get wrong; in strict mode any repair is an error."""
    if not isinstance(text, str):
        raise _fail(f"{what} must be a string, got {type(text).__name__}", ErrorCode.ID_FORMAT)
    warnings: list[str] = []
    out = text.strip()
    if out != text:
        warnings.append("surrounding whitespace removed")
    folded = unicodedata.normalize("NFKC", out).replace("\u3002", ".")
    if folded != out:
        warnings.append("full-width characters converted to ASCII")
    upper = folded.upper()
    if upper != folded:
        warnings.append("lowercase letters upper-cased")
    if strict and warnings:
        raise _fail(
            f"{what} {text!r} is not canonical ({'; '.join(warnings)}); send {upper!r} instead",
            ErrorCode.ID_FORMAT,
            value=text,
            canonical=upper,
        )
    return upper, warnings


# --- check characters -----------------------------------------------------------------------


def mod37_36_check_char(payload: str) -> str:
    """ISO/IEC 7064 MOD 37,36 (hybrid) check character over 0-9A-Z, as GB/T 36904 requires."""
    values = [_MOD37_VALUES[c] for c in payload if c in _MOD37_VALUES]
    if not values or len(values) != len(payload):
        raise _fail(f"MOD 37,36 payload {payload!r} must be non-empty 0-9A-Z", ErrorCode.ID_FORMAT)
    p = 36
    for value in values:
        s = (p + value) % 36 or 36
        p = (2 * s) % 37
    return _MOD37_ALPHABET[(1 - p) % 36]


def uscc_check_char(first17: str) -> str:
    """GB 32100 check character: weights 3^(i-1) mod 31 over the 31-character alphabet."""
    if len(first17) != 17 or any(c not in _USCC_ALPHABET for c in first17):
        raise _fail(f"USCC body {first17!r} must be 17 chars of {_USCC_ALPHABET}", ErrorCode.ID_FORMAT)
    total = sum(_USCC_ALPHABET.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=False))
    return _USCC_ALPHABET[(31 - total % 31) % 31]


def id_number_check_char(first17: str) -> str:
    """GB 11643 check character (MOD 11-2)."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise _fail(f"ID number body {first17!r} must be 17 digits", ErrorCode.ID_FORMAT)
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=False)) % 11]


# --- regions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Region:
    """A GB/T 2260 code split into its levels, so authority scopes can be compared."""

    code: str
    province: str
    prefecture: str
    county: str

    @property
    def level(self) -> str:
        """'national' only for the central code 100000, else province | prefecture | county."""
        if self.code == NATIONAL_REGION:
            return "national"
        if self.prefecture == "00":
            return "province"
        return "prefecture" if self.county == "00" else "county"

    def governs(self, other: Region | str) -> bool:
        """True if an authority for this region has jurisdiction over `other`."""
        target = other if isinstance(other, Region) else parse_region(other)
        level = self.level
        if level == "national":
            return True
        if level == "province":
            return target.province == self.province
        if level == "prefecture":
            return target.code[:4] == self.code[:4]
        return target.code == self.code


def parse_region(code: str | int) -> Region:
    """Parse a 6-digit region code; 100000 is accepted as the national (central) level."""
    text = str(code) if isinstance(code, int) and not isinstance(code, bool) else code
    if not isinstance(text, str) or len(text) != 6 or not text.isascii() or not text.isdigit():
        raise _fail(f"region code {code!r} must be 6 digits (GB/T 2260)", ErrorCode.ID_FORMAT, value=code)
    region = Region(text, text[:2], text[2:4], text[4:])
    if text == NATIONAL_REGION:
        return region
    if region.province not in _PROVINCES:
        raise _fail(
            f"region {text}: unknown province {region.province!r}; use a GB/T 2260 code",
            ErrorCode.ID_REGION,
            value=text,
        )
    if region.prefecture == "00" and region.county != "00":
        raise _fail(
            f"region {text}: a county code needs a prefecture part; check the code",
            ErrorCode.ID_REGION,
            value=text,
        )
    return region


# --- 统一社会信用代码 ------------------------------------------------------------------------


@dataclass(frozen=True)
class USCC:
    """统一社会信用代码 of an organisation (issuer or licence-defining authority)."""

    code: str
    registration_authority: str
    org_type: str
    region: str

    def __str__(self) -> str:
        return self.code


@lru_cache(maxsize=4096)  # issuing checks the same agency and type codes for every record
@lru_cache(maxsize=4096)
def _parse_uscc_canonical(text: str, what: str = "USCC") -> USCC:
    """Cached: every certificate names its agency and its type's authority, a few hundred codes
    in all, and the verifier parses both on every verification (an error is raised, not cached)."""
    if len(text) != 18:
        raise _fail(
            f"{what} {text!r} must be 18 characters, got {len(text)}", ErrorCode.ID_FORMAT, value=text
        )
    bad = sorted({c for c in text if c not in _USCC_ALPHABET})
    if bad:
        raise _fail(
            f"{what} {text!r} contains {''.join(bad)!r}; only {_USCC_ALPHABET} are allowed "
            "(I, O, Z, S, V never occur)",
            ErrorCode.ID_FORMAT,
            value=text,
        )
    region = text[2:8]
    if not region.isdigit():
        raise _fail(f"{what} {text!r}: characters 3-8 must be a region code", ErrorCode.ID_FORMAT, value=text)
    parse_region(region)
    expected = uscc_check_char(text[:17])
    if text[17] != expected:
        raise _check_mismatch(what, text[17], expected, text)
    return USCC(text, text[0], text[1], region)


def _parse_uscc(text: str, strict: bool) -> tuple[USCC, list[str]]:
    code, warnings = _normalise(text, "USCC", strict)
    return _parse_uscc_canonical(code), warnings


def parse_uscc(text: str, *, strict: bool = True) -> USCC:
    """Parse and verify a USCC; lenient mode repairs case, width and whitespace."""
    return _parse_uscc(text, strict)[0]


# --- 公民身份号码 -----------------------------------------------------------------------------


@dataclass(frozen=True)
class IdNumber:
    """A citizen ID number; keep it out of logs and use `masked` for display."""

    code: str
    region: str
    birth_date: datetime.date
    sex: str

    @property
    def masked(self) -> str:
        return self.code[:4] + "*" * (len(self.code) - 8) + self.code[-4:]


def _birth_date(code: str) -> datetime.date | None:
    try:
        return datetime.date(int(code[6:10]), int(code[10:12]), int(code[12:14]))
    except ValueError:
        return None


def _parse_id_number(text: str, strict: bool, today: datetime.date | None) -> tuple[IdNumber, list[str]]:
    code, warnings = _normalise(text, "ID number", strict)
    shown = code[:4] + "…" if len(code) > 4 else code  # never echo a full ID number in errors
    if len(code) != 18 or not code[:17].isdigit() or code[17] not in "0123456789X":
        raise _fail(f"ID number {shown!r} must be 17 digits then a digit or X", ErrorCode.ID_FORMAT)
    region = parse_region(code[:6])
    if region.level == "national":
        raise _fail(f"ID number {shown!r}: {code[:6]} is not a place of registration", ErrorCode.ID_REGION)
    birth = _birth_date(code)
    if birth is None:
        raise _fail(
            f"ID number {shown!r}: birth date {code[6:14]} does not exist; check characters 7-14",
            ErrorCode.ID_DATE,
            birth_date=code[6:14],
        )
    if birth > (today or datetime.date.today()):
        raise _fail(
            f"ID number {shown!r}: birth date {birth.isoformat()} is in the future",
            ErrorCode.ID_DATE,
            birth_date=code[6:14],
        )
    expected = id_number_check_char(code[:17])
    if code[17] != expected:
        raise _check_mismatch("ID number", code[17], expected, shown)
    return IdNumber(code, region.code, birth, "M" if int(code[16]) % 2 else "F"), warnings


def parse_id_number(text: str, *, strict: bool = True, today: datetime.date | None = None) -> IdNumber:
    """Parse and verify a citizen ID number; `today` pins the future-date check in tests."""
    return _parse_id_number(text, strict, today)[0]


# --- e-licence identifier ---------------------------------------------------------------------


@dataclass(frozen=True)
class LicenceId:
    """A GB/T 36904 e-licence identifier; build it with build_licence_id so the check is right."""

    type_code: str
    issuer: str
    serial: str
    version: int
    check: str

    @property
    def payload(self) -> str:
        return f"{self.type_code}{self.issuer}{self.serial}{self.version:03d}"

    def __str__(self) -> str:
        return f"{OID_ROOT}.{self.type_code}.{self.issuer}.{self.serial}.{self.version:03d}.{self.check}"

    def next_version(self) -> LicenceId:
        """The identifier of the re-issued licence (version + 1, new check character)."""
        return build_licence_id(self.type_code, self.issuer, self.serial, self.version + 1)


def _validate_parts(type_code: str, issuer: str, serial: str, version: int) -> None:
    if len(type_code) != 21 or not type_code[18:].isdigit():
        raise _fail(
            f"licence type {type_code!r} must be the authority's USCC plus 3 digits",
            ErrorCode.ID_FORMAT,
            value=type_code,
        )
    _parse_uscc_canonical(type_code[:18], "licence type authority USCC")
    _parse_uscc_canonical(issuer, "issuer USCC")
    if not _SERIAL_RE.fullmatch(serial):
        raise _fail(
            f"serial {serial!r} must be digits and upper-case letters", ErrorCode.ID_FORMAT, value=serial
        )
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= 999:
        raise _fail(f"version {version!r} must be 1..999", ErrorCode.ID_FORMAT, value=version)


def build_licence_id(type_code: str, issuer: str, serial: str, version: int = 1) -> LicenceId:
    """Issue-side constructor: every part must already be canonical."""
    _validate_parts(type_code, issuer, serial, version)
    payload = f"{type_code}{issuer}{serial}{version:03d}"
    return LicenceId(type_code, issuer, serial, version, mod37_36_check_char(payload))


def _parse_licence_id(text: str, strict: bool) -> tuple[LicenceId, list[str]]:
    value, warnings = _normalise(text, "licence identifier", strict)
    if value.startswith(OID_ROOT + "."):
        rest = value[len(OID_ROOT) + 1 :]
    elif value.count(".") == 4 and not strict:
        rest = value
        warnings.append(f"OID root {OID_ROOT} added")
    else:
        raise _fail(
            f"licence identifier {value!r} must start with {OID_ROOT}.", ErrorCode.ID_FORMAT, value=value
        )
    parts = rest.split(".")
    if len(parts) != 5:
        raise _fail(
            f"licence identifier {value!r} must be {OID_ROOT}.<type>.<issuer>.<serial>.<version>.<check>",
            ErrorCode.ID_FORMAT,
            value=value,
        )
    type_code, issuer, serial, version, check = parts
    if len(version) != 3 or not version.isdigit():
        raise _fail(
            f"licence version {version!r} must be 3 digits, e.g. 001", ErrorCode.ID_FORMAT, value=value
        )
    number = int(version)
    _validate_parts(type_code, issuer, serial, number)
    if len(check) != 1 or check not in _MOD37_ALPHABET:
        raise _fail(f"licence check {check!r} must be one character 0-9A-Z", ErrorCode.ID_FORMAT, value=value)
    expected = mod37_36_check_char(f"{type_code}{issuer}{serial}{version}")  # parts validated above
    if check != expected:
        raise _check_mismatch("licence identifier", check, expected, value)
    return LicenceId(type_code, issuer, serial, number, check), warnings


def parse_licence_id(text: str, *, strict: bool = True) -> LicenceId:
    """Parse and verify an e-licence identifier; lenient mode also adds a missing OID root."""
    return _parse_licence_id(text, strict)[0]


# --- routing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checked:
    """Result of check_identifier: what the text was, its parsed value, and any repairs made."""

    kind: str
    value: object
    warnings: tuple[str, ...]


def _looks_like_id_number(code: str) -> bool:
    if len(code) != 18 or not code[:17].isdigit() or code[17] not in "0123456789X":
        return False
    birth = _birth_date(code)
    return birth is not None and 1850 <= birth.year <= datetime.date.today().year


def check_identifier(text: str, *, strict: bool = False) -> Checked:
    """Guess which identifier `text` is and verify it; raises IdentifierError if invalid."""
    code, warnings = _normalise(text, "identifier", strict)
    if "." in code:
        lic, more = _parse_licence_id(code, strict)
        return Checked("licence", lic, tuple(warnings + more))
    if _looks_like_id_number(code):
        try:
            return Checked("id_number", _parse_id_number(code, strict, None)[0], tuple(warnings))
        except IdentifierError as id_error:
            try:  # an all-digit USCC can look like an ID number
                return Checked("uscc", _parse_uscc_canonical(code), tuple(warnings))
            except IdentifierError:
                raise id_error from None
    if len(code) == 18:
        return Checked("uscc", _parse_uscc_canonical(code), tuple(warnings))
    if len(code) == 6 and code.isdigit():
        return Checked("region", parse_region(code), tuple(warnings))
    raise _fail(
        f"{code!r} is not a licence identifier, USCC, ID number or region code",
        ErrorCode.ID_FORMAT,
        value=code,
    )
