"""Fixtures of the format tests: one server serving the cases (tests/conftest.py's
``format_cases``, written once per run)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cellucid_desktop.server.registry import DatasetRegistry
from tests.data_api.conftest import Api, start_api  # noqa: F401 - shared fixture

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
