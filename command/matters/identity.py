"""Identity numbers and phones of parties: checked, normalised and masked (pure functions).

- 居民身份证号 (GB 11643-1999): 17 digits then a digit or X; digits 7–14 a real birth date, not
  in the future; the ISO 7064 MOD 11-2 check character. The region code is not checked.
- 统一社会信用代码 (GB 32100-2015): 18 characters of the alphabet 0-9 A-H J-N P-R T U W-Y
  (no I, O, S, V, Z) with the MOD 31 check character.

>>> id_number_error("11010519491231002X") is None
True
>>> id_number_error("110105194912310021")
'the check character is wrong (expected X)'
>>> credit_code_error("91350100M000100Y43") is None
True
>>> mask_id_number("330102199001011234")
'330102********1234'
>>> mask_phone("13812341234")
'138****1234'
"""

from __future__ import annotations

from datetime import date

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"
CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def normalise_id_number(value: str) -> str:
    """Upper-case, without spaces (a lower-case x is a common typing)."""
    return value.replace(" ", "").upper()


def id_check_character(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of the first 17 digits."""
    return ID_CHECK[sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS)) % 11]


def id_number_error(value: str, *, today: date | None = None) -> str | None:
    """Why `value` (normalised) is not a valid 18-character ID number, or None."""
    if len(value) != 18:
        return f"must be 18 characters, got {len(value)}"
    if not value[:17].isascii() or not value[:17].isdigit() or value[17] not in "0123456789X":
        return "17 digits then a digit or X"
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return f"the birth date {value[6:14]} does not exist"
    if born > (today or date.today()) or born.year < 1880:
        return f"the birth date {born.isoformat()} is not possible"
    expected = id_check_character(value[:17])
    if value[17] != expected:
        return f"the check character is wrong (expected {expected})"
    return None


def credit_check_character(first17: str) -> str:
    """The GB 32100 MOD 31 check character of the first 17 characters."""
    total = sum(CREDIT_ALPHABET.index(c) * w for c, w in zip(first17, CREDIT_WEIGHTS))
    return CREDIT_ALPHABET[(31 - total % 31) % 31]


def credit_code_error(value: str) -> str | None:
    """Why `value` (normalised) is not a valid unified social credit code, or None."""
    if len(value) != 18:
        return f"must be 18 characters, got {len(value)}"
    bad = sorted({c for c in value if c not in CREDIT_ALPHABET})
    if bad:
        return f"characters not allowed: {' '.join(bad)} (no I, O, S, V, Z)"
    expected = credit_check_character(value[:17])
    if value[17] != expected:
        return f"the check character is wrong (expected {expected})"
    return None


def normalise_phone(value: str) -> str:
    """Digits only, without the country prefix +86 / 0086 (the form searches compare)."""
    digits = "".join(c for c in value if c.isdigit())
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11 \
                and digits[len(prefix)] == "1":
            return digits[len(prefix):]
    return digits


def phone_error(value: str) -> str | None:
    """Why `value` is not a phone number a party could be called on, or None."""
    if not all(c.isdigit() or c in "+- ()" for c in value):
        return "may contain only digits, spaces and + - ( )"
    digits = normalise_phone(value)
    if not 5 <= len(digits) <= 20:
        return "must have 5 to 20 digits"
    return None


def mask_id_number(value: str) -> str:
    """330102199001011234 → 330102********1234."""
    return value[:6] + "*" * 8 + value[-4:]


def mask_phone(value: str) -> str:
    """13812341234 → 138****1234 (digits only; short numbers keep only their last two)."""
    digits = normalise_phone(value)
    if len(digits) >= 7:
        return digits[:3] + "****" + digits[-4:]
    return "*" * (len(digits) - 2) + digits[-2:]


def birth_and_sex(id_number: str) -> tuple[date, str]:
    """The birth date and sex (男/女) an ID number carries."""
    born = date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
    return born, "男" if int(id_number[16]) % 2 else "女"


def fictitious_id_number(region: str, born: date, sequence: int) -> str:
    """An ID number with a right check character (for demos and tests), e.g. region 999999,
    which no county uses."""
    first17 = f"{region}{born:%Y%m%d}{sequence % 1000:03d}"
    return first17 + id_check_character(first17)
