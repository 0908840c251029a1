"""What personal data looks like in a log line: the scan of a test's server and of a whole session.

Found: an unmasked mobile number, an 18-character ID number whose check character is right, a
field of an incident or a user that carries a person (`reporter`, `phone`, `display_name`, a
party), and the names tests plant (`CANARIES`: reporters and parties whose names cannot be told
from other text by a pattern).
"""

from __future__ import annotations

import re

MOBILE = re.compile(r"(?<![0-9A-Za-z])1[3-9][0-9]{9}(?![0-9A-Za-z])")
ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])[1-9][0-9]{16}[0-9Xx](?![0-9A-Za-z])")
FIELDS = re.compile(r"""["'](reporter|display_name|parties|party_name|id_number)["']\s*:""")
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)

# names the tests give reporters, users and parties, to be found nowhere in a log
CANARIES = ("欧阳测试员", "司马上报人", "诸葛当事人", "上官姓名")
# a valid ID number (GB 11643 check character) and a mobile, for the same purpose
CANARY_ID = "110101199003074573"
CANARY_PHONE = "13987654321"


def id_number_ok(text: str) -> bool:
    """Whether an 18-character ID number's check character is right (ISO 7064 MOD 11-2)."""
    total = sum(int(d) * w for d, w in zip(text[:17], _WEIGHTS))
    return "10X98765432"[total % 11] == text[17].upper()


def findings(lines, canaries=CANARIES) -> list[str]:
    """The lines that carry personal data, each with what was found."""
    found = []
    for line in lines:
        what = [m for m in MOBILE.findall(line)]
        what += [m for m in ID_NUMBER.findall(line) if id_number_ok(m)]
        what += [f"field {m}" for m in FIELDS.findall(line)]
        what += [name for name in canaries if name in line]
        if what:
            found.append(f"{what}: {line[:300]}")
    return found


assert id_number_ok(CANARY_ID) and not findings(["138****4321 GET /healthz 200"])
assert findings([f"x {CANARY_PHONE}"]) and findings([CANARY_ID]) and findings([CANARIES[0]])
