"""The committed icons: every size the OSes want, .ico/.icns readable, tray variants, and
that assets/make_icons.py really produces them from the SVG sources."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image

from cellucid_desktop import assets

ROOT = Path(__file__).resolve().parents[2]


def _make_icons_module():
    spec = importlib.util.spec_from_file_location("make_icons", ROOT / "assets" / "make_icons.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_app_icon_exists_at_every_size_as_a_rounded_square():
    for size in assets.ICON_SIZES:
        image = Image.open(assets.icon_png(size))
        assert image.size == (size, size) and image.mode == "RGBA"
        assert image.getpixel((0, 0))[3] == 0, "corners are outside the rounded square"
        assert image.getpixel((size // 2, size // 2))[3] == 255
    big = Image.open(ROOT / "assets" / "icon-1024.png")
    assert big.size == (1024, 1024)
    # three coloured clusters on a dark ground: many distinct colours, not a flat tile
    assert len(Image.open(assets.icon_png(256)).getcolors(1 << 16)) > 50


def test_ico_and_icns_open_with_pillow_and_hold_all_sizes():
    ico = Image.open(ROOT / "assets" / "cellucid-desktop.ico")
    assert ico.format == "ICO"
    assert {(s, s) for s in (16, 24, 32, 48, 64, 128, 256)} <= set(ico.info["sizes"])
    icns = Image.open(ROOT / "assets" / "cellucid-desktop.icns")
    assert icns.format == "ICNS"
    assert {(16, 16, 2), (128, 128, 1), (256, 256, 1), (512, 512, 1), (512, 512, 2)} <= set(icns.info["sizes"])
    icns.load()  # opens the largest: the 1024 px (512 pt @2x) image
    assert icns.size == (1024, 1024)


def test_tray_glyph_is_dark_for_light_panels_and_light_for_dark_panels():
    for size in assets.TRAY_SIZES:
        dark = Image.open(assets.tray_png(size, dark_panel=False)).convert("RGBA")
        light = Image.open(assets.tray_png(size, dark_panel=True)).convert("RGBA")
        assert dark.size == light.size == (size, size)

        def mean_grey(image: Image.Image) -> float:
            pixels = np.asarray(image)
            opaque = pixels[pixels[..., 3] == 255][:, :3]
            assert len(opaque), "the glyph draws something"
            return float(opaque.mean())

        assert mean_grey(dark) < 60 < 200 < mean_grey(light)
        assert dark.getpixel((0, 0))[3] == 0, "transparent around the glyph"
    assert assets.tray_png(20).name == "tray-dark-22.png"  # nearest size not smaller


def test_make_icons_renders_every_committed_file_from_the_svgs(tmp_path):
    written = _make_icons_module().make_all(tmp_path / "pkg", tmp_path / "build")
    names = {p.name for p in written}
    committed_runtime = {p.name for p in assets.ASSETS.iterdir() if p.suffix in (".png", ".svg")}
    assert committed_runtime == {p.name for p in (tmp_path / "pkg").iterdir()}
    assert {"icon-1024.png", "cellucid-desktop.ico", "cellucid-desktop.icns"} <= names
    assert (tmp_path / "pkg" / "icon.svg").read_bytes() == (ROOT / "assets" / "icon.svg").read_bytes()
    for name in ("icon-64.png", "tray-light-22.png"):
        fresh, committed = Image.open(tmp_path / "pkg" / name), Image.open(assets.ASSETS / name)
        assert fresh.size == committed.size
        # same drawing (renderer versions may differ by a little antialiasing)
        diff = np.abs(np.asarray(fresh.convert("RGBA"), dtype=int)
                      - np.asarray(committed.convert("RGBA"), dtype=int))
        assert diff.mean() < 4
