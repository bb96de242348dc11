"""Write the committed installer inputs under packaging/ from the integration modules.

Usage: python -m cellucid_desktop.integration.templates packaging
The Linux files are for system-wide installs (Exec is the command on PATH); per-user
installs write their own through `cellucid-desktop integrate`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cellucid_desktop.integration import APP_ID, linux, windows


def templates() -> dict[str, str]:
    """Relative path under packaging/ -> file text."""
    return {
        f"linux/{linux.DESKTOP_FILE}": linux.desktop_entry([APP_ID]),
        f"linux/{linux.MIME_FILE}": linux.mime_xml(),
        f"windows/{APP_ID}.iss": windows.inno_setup_script(),
    }


def write(packaging_dir: Path) -> list[Path]:
    """Write every template; returns the paths."""
    written = []
    for rel, text in templates().items():
        path = packaging_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\r\n" if rel.endswith(".iss") else "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write(Path(sys.argv[1] if len(sys.argv) > 1 else "packaging")):
        print(written_path)
