"""The format cases (tests/formats) are shared with the conformance suite."""

from tests.formats.conftest import format_cases  # noqa: F401 - shared fixture
