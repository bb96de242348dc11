"""macOS: the Info.plist of `Cellucid Desktop.app` (used by packaging/cellucid-desktop.spec).

Finder learns about `.h5ad` only from the bundle's Info.plist: an imported UTI
(`org.scverse.anndata`, since AnnData's makers do not export one) plus a document type
that names it. Opened files then arrive as Apple events, not argv
(see cellucid_desktop/desktop/fileopen.py).
"""

from __future__ import annotations

from typing import Any

from cellucid_desktop.integration import APP_ID, APP_NAME, EXTENSION, MIME_TYPE, TYPE_DESCRIPTION

BUNDLE_ID = "org.cellucid.desktop"
UTI = "org.scverse.anndata"


def info_plist(version: str, handler_rank: str = "Default") -> dict[str, Any]:
    """Info.plist keys beyond PyInstaller's defaults.

    ``handler_rank``: "Default" so a double-click opens the app when nothing else claims
    `.h5ad` (no app owns the format); "Alternate" only lists it under *Open With*.
    LSUIElement stays False: the app has real windows, and without a main menu the web
    views would lose Cmd+C/V/Q; the tray child process hides its own Dock icon instead
    (Accessory activation policy).
    """
    if handler_rank not in ("Default", "Alternate", "Owner", "None"):
        raise ValueError(f"unknown LSHandlerRank {handler_rank!r}")
    return {
        "CFBundleName": APP_NAME,
        "CFBundleDisplayName": APP_NAME,
        "CFBundleExecutable": APP_ID,
        "CFBundleIdentifier": BUNDLE_ID,
        "CFBundleShortVersionString": version,
        "CFBundleVersion": version,
        "LSMinimumSystemVersion": "11.0",
        "LSUIElement": False,
        "NSHighResolutionCapable": True,
        "NSRequiresAquaSystemAppearance": False,
        "CFBundleDocumentTypes": [{
            "CFBundleTypeName": TYPE_DESCRIPTION,
            "CFBundleTypeRole": "Viewer",
            "LSHandlerRank": handler_rank,
            "LSItemContentTypes": [UTI],
        }],
        "UTImportedTypeDeclarations": [{
            "UTTypeIdentifier": UTI,
            "UTTypeDescription": TYPE_DESCRIPTION,
            "UTTypeConformsTo": ["public.data"],
            "UTTypeTagSpecification": {
                "public.filename-extension": [EXTENSION],
                "public.mime-type": [MIME_TYPE],
            },
        }],
    }
