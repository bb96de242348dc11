"""Dataset ids and names, following cellucid's rules so its web app accepts them."""

from __future__ import annotations

import re
import unicodedata

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,179}$")
_WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL"} | {f"{p}{i}" for p in ("COM", "LPT") for i in range(1, 10)}


def is_valid_id(value: str) -> bool:
    """cellucid's id rule: ASCII word-ish, no trailing dot, no Windows device name."""
    return (
        bool(ID_PATTERN.match(value))
        and not value.endswith(".")
        and value.split(".")[0].upper() not in _WINDOWS_DEVICES
    )


def slugify_id(text: str) -> str:
    """Turn any text (a file stem, a user's id) into a valid dataset id."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", ascii_text).strip("-._")[:180].rstrip(".")
    if not slug or not slug[0].isalnum():
        slug = f"dataset-{slug}".rstrip("-.")
    if not is_valid_id(slug):
        slug = f"ds-{slug}"[:180].rstrip(".")
    return slug


def clean_name(text: str, fallback: str) -> str:
    """A display name without control or zero-width characters or outer whitespace."""
    kept = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf", "Cs"))
    kept = kept.strip()
    return kept or fallback
