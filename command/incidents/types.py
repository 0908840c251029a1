"""Incident types and severities (DOMAIN.md's table); labels and codes are interchangeable."""

from layers.theme import TYPE_CODES, TYPE_LABELS

LABEL_TO_CODE = {label: code for code, label in TYPE_LABELS.items()}
SEVERITY_LABELS = {1: "Ⅰ级 特别重大", 2: "Ⅱ级 重大", 3: "Ⅲ级 较大", 4: "Ⅳ级 一般"}
STATUSES = {"reported": "上报"}


def normalise_type(value: str) -> str | None:
    """Return the type code for a code or a Chinese label, None when unknown."""
    value = value.strip()
    if value in TYPE_LABELS:
        return value
    if value.lower() in TYPE_LABELS:
        return value.lower()
    return LABEL_TO_CODE.get(value)


__all__ = ["TYPE_CODES", "TYPE_LABELS", "SEVERITY_LABELS", "STATUSES", "normalise_type"]
