"""What a matter is about, and how it came in: categories and channels (code or label).

Categories are configurable with `CMDCENTER_MATTER_CATEGORIES` ("code:名称,…", replacing the
list; `other` is always there).

>>> normalise_category("劳资纠纷")
'labour'
>>> channel_label("visit")
'来访'
"""

from __future__ import annotations

MATTER_TYPES = ("dispute", "petition", "complaint", "legal", "psych", "other")

CATEGORY_LABELS: dict[str, str] = {
    "marriage_family": "婚姻家庭", "neighbour": "邻里纠纷", "labour": "劳资纠纷",
    "land_acquisition": "征地拆迁", "housing": "房屋宅基地", "property_mgmt": "物业管理",
    "medical": "医患纠纷", "forest_land": "山林土地", "contract": "合同履行",
    "consumer": "消费纠纷", "traffic": "交通事故", "other": "其他",
}

CHANNEL_LABELS: dict[str, str] = {
    "visit": "来访", "phone": "来电", "letter": "来信", "online": "网上", "grid": "网格上报",
    "referral": "部门移交", "feed": "数据接入",
}
# the doors a person at the window can name (feeds come in as `feed`, phones as `grid`)
WINDOW_CHANNELS = ("visit", "phone", "letter", "online", "referral")

RISK_LABELS = {"high": "高", "medium": "中", "low": "低"}
ROLE_LABELS = {"applicant": "申请人", "respondent": "被申请人", "other": "其他当事人"}
KIND_LABELS = {"person": "自然人", "org": "单位"}


def is_matter(type_code: str | None) -> bool:
    """Whether incidents of this type are matters (a case number, a record of their own)."""
    return type_code in MATTER_TYPES


def configure(spec: str | None) -> None:
    """Replace the category list from "code:名称,…" (None: the defaults). Raises ValueError."""
    if not spec:
        return
    found: dict[str, str] = {}
    for part in spec.split(","):
        code, sep, label = part.strip().partition(":")
        code, label = code.strip(), label.strip()
        if not sep or not code or not label or not code.replace("_", "").isalnum():
            raise ValueError(f"expected code:名称 pairs, got {part.strip()!r}")
        found[code] = label
    found.setdefault("other", "其他")
    CATEGORY_LABELS.clear()
    CATEGORY_LABELS.update(found)


def normalise_category(value: str | None) -> str | None:
    """The category code for a code or its label (None when unknown)."""
    if value is None:
        return None
    value = value.strip()
    if value in CATEGORY_LABELS:
        return value
    return next((code for code, label in CATEGORY_LABELS.items() if label == value), None)


def category_label(code: str | None) -> str | None:
    """The Chinese label of a category code."""
    return None if code is None else CATEGORY_LABELS.get(code, code)


def channel_label(code: str | None) -> str | None:
    """The Chinese label of a channel code."""
    return None if code is None else CHANNEL_LABELS.get(code, code)


def normalise_channel(value: str | None) -> str | None:
    """The channel code for a code or its label (None when unknown)."""
    if value is None:
        return None
    value = value.strip()
    if value in CHANNEL_LABELS:
        return value
    return next((code for code, label in CHANNEL_LABELS.items() if label == value), None)
