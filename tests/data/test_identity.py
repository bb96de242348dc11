"""Dataset ids follow cellucid's rule, so its web app accepts every id we publish."""

from __future__ import annotations

import pytest

from cellucid_desktop.data.identity import clean_name, is_valid_id, slugify_id


@pytest.mark.parametrize("value", ["pbmc3k", "PBMC_3k.v2", "a", "x-1", "a" * 180])
def test_valid_ids_are_accepted(value: str) -> None:
    assert is_valid_id(value)


@pytest.mark.parametrize("value", ["", "-lead", ".hidden", "trail.", "has space", "a/b", "é",
                                   "a" * 181, "CON", "nul.h5ad", "com1"])
def test_invalid_ids_are_refused(value: str) -> None:
    assert not is_valid_id(value)


@pytest.mark.parametrize("text", ["My data (2024)", "Zellatlas für Lunge", "..", "___", "CON",
                                  "a" * 400, "日本語", "../../etc/passwd", "x."])
def test_slugify_always_gives_a_valid_id(text: str) -> None:
    slug = slugify_id(text)
    assert is_valid_id(slug), slug
    assert "/" not in slug


def test_slugify_keeps_readable_text() -> None:
    assert slugify_id("My data (2024)") == "My-data-2024"
    assert slugify_id("Zellatlas für Lunge") == "Zellatlas-fur-Lunge"


def test_names_lose_control_and_invisible_characters() -> None:
    assert clean_name("  Lung\u200b atlas\x07 ", "fallback") == "Lung atlas"
    assert clean_name("\u202e\x00", "fallback") == "fallback"
