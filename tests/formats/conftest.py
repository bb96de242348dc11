"""Fixtures of the format tests: every case written once per run, one server serving them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cellucid_desktop.server.registry import DatasetRegistry
from tests.data_api.conftest import Api, start_api  # noqa: F401 - shared fixture
from tests.formats.stores import Case, build_all


@pytest.fixture(scope="session")
def format_cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    return build_all(tmp_path_factory.mktemp("formats"))


@pytest.fixture(scope="module")
def formats_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One server (with its own cache folder) for a module's read-only checks."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("formats-cache")))
        api = Api(DatasetRegistry())
        try:
            yield api
        finally:
            api.stop()
