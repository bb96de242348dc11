"""Console output shared by the commands: errors as one line, cellucid's banner shape."""

from __future__ import annotations

import sys

from cellucid_desktop.logs import terminal_safe

RULE = "\u2550" * 60


def error(message: str) -> int:
    """Print ``Error: <message>`` on stderr and return exit code 1."""
    print(f"Error: {terminal_safe(message)}", file=sys.stderr)
    return 1


def field_line(label: str, value: str) -> str:
    """``  Label:       value`` with the value in column 16, as cellucid aligns them
    (made terminal-safe: values name files and keys that came from a dataset)."""
    return f"  {label + ':':<14}{terminal_safe(value)}"


def banner(title: str, lines: list[tuple[str, str]], notes: list[str] = (),
           footer: str = "Press Ctrl+C to stop") -> str:
    """The boxed block cellucid prints once its server runs.

    Labels are padded so values start in column 16, as in ``  Viewer URL:   http://...``,
    which tools parse with ``^  Viewer URL:\\s+(\\S+)$``.
    """
    body = [field_line(label, value) for label, value in lines]
    extra = ["", *(f"  {terminal_safe(n)}" for n in notes)] if notes else []
    return "\n".join(["", RULE, f"  {title}", RULE, "", *body, *extra, "",
                      f"  {footer}", "", RULE])
