"""macOS: the Info.plist of `Cellucid Desktop.app` (used by packaging/cellucid-desktop.spec).

Finder learns about the dataset types only from the bundle's Info.plist: an imported UTI
per type (`org.scverse.anndata`... since their makers export none) plus a document type
naming them. A Zarr store folder is declared as a folder type (it conforms to
`public.folder`, so Finder still browses into it) that the app opens from *Open With*
and by drag and drop. Opened files then arrive as Apple events, not argv
(see cellucid_desktop/desktop/fileopen.py).
"""

from __future__ import annotations

from typing import Any

from cellucid_desktop.integration import APP_ID, APP_NAME, DATA_TYPES, DataType

BUNDLE_ID = "org.cellucid.desktop"
_CONFORMS = {"hdf5": ["public.data"], "zip": ["public.zip-archive", "public.data"],
             "folder": ["public.folder"]}


def info_plist(version: str, handler_rank: str = "Default") -> dict[str, Any]:
    """Info.plist keys beyond PyInstaller's defaults.

    ``handler_rank``: "Default" so a double-click opens the app when nothing else claims
    the files (no app owns the formats); "Alternate" only lists it under *Open With*.
    Store folders are always "Alternate": a double-click on a folder keeps browsing it.
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
        "CFBundleDocumentTypes": [_document_type(t, handler_rank) for t in DATA_TYPES],
        "UTImportedTypeDeclarations": [_type_declaration(t) for t in DATA_TYPES],
    }


def _document_type(data_type: DataType, handler_rank: str) -> dict[str, Any]:
    folder = data_type.container == "folder"
    return {"CFBundleTypeName": data_type.description, "CFBundleTypeRole": "Viewer",
            "LSHandlerRank": "Alternate" if folder else handler_rank,
            "LSItemContentTypes": [data_type.uti],
            **({"LSTypeIsPackage": False} if folder else {})}


def _type_declaration(data_type: DataType) -> dict[str, Any]:
    tags: dict[str, list[str]] = {"public.filename-extension": [data_type.ending]}
    if data_type.container != "folder":
        tags["public.mime-type"] = [data_type.mime]
    return {"UTTypeIdentifier": data_type.uti, "UTTypeDescription": data_type.description,
            "UTTypeConformsTo": _CONFORMS[data_type.container],
            "UTTypeTagSpecification": tags}
