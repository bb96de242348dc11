"""Console output shared by the commands: errors as one line, cellucid's banner shape."""

from __future__ import annotations

import sys

RULE = "\u2550" * 60


def error(message: str) -> int:
    """Print ``Error: <message>`` on stderr and return exit code 1."""
    print(f"Error: {message}", file=sys.stderr)
    return 1


def banner(title: str, lines: list[tuple[str, str]], notes: list[str] = (),
           footer: str = "Press Ctrl+C to stop") -> str:
    """The boxed block cellucid prints once its server runs.

    Labels are padded so values start in column 16, as in ``  Viewer URL:   http://...``,
    which tools parse with ``^  Viewer URL:\\s+(\\S+)$``.
    """
    body = [f"  {label + ':':<14}{value}" for label, value in lines]
    extra = ["", *(f"  {n}" for n in notes)] if notes else []
    return "\n".join(["", RULE, f"  {title}", RULE, "", *body, *extra, "",
                      f"  {footer}", "", RULE])
