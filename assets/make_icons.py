"""Render every icon the operating systems want from assets/icon.svg and assets/tray.svg.

Outputs (committed, regenerate after editing an SVG):
  cellucid_desktop/assets/  runtime copies the app and `cellucid-desktop integrate` use:
      icon.svg, icon-<N>.png (16..512), tray-dark-<N>.png and tray-light-<N>.png
  assets/                   build-only files: icon-1024.png, cellucid-desktop.ico (Windows),
      cellucid-desktop.icns (macOS)

Usage: python assets/make_icons.py [--package-dir DIR] [--build-dir DIR]
Needs the `packaging` extra (cairosvg renders the SVG, Pillow writes .ico and .icns).
"""

from __future__ import annotations

import argparse
import io
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import cairosvg
from PIL import Image

HERE = Path(__file__).resolve().parent
ICON_SVG = HERE / "icon.svg"
TRAY_SVG = HERE / "tray.svg"
PACKAGE_DIR = HERE.parent / "cellucid_desktop" / "assets"

APP_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)  # hicolor theme sizes + window icons
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)       # Windows uses up to 256 in .ico
ICNS_SIZES = (16, 32, 64, 128, 256, 512, 1024)   # the sizes Pillow's ICNS writer stores
TRAY_SIZES = (16, 22, 24, 32, 44, 64)            # 22/44 = GNOME/macOS menu bar at 1x/2x
# Tray glyph colours: "dark" sits on light panels, "light" on dark panels.
TRAY_COLOURS = {"dark": "#1f2430", "light": "#f4f6fb"}


def render(svg: bytes, size: int) -> Image.Image:
    """Rasterise an SVG to a square RGBA image."""
    png = cairosvg.svg2png(bytestring=svg, output_width=size, output_height=size)
    return Image.open(io.BytesIO(png)).convert("RGBA")


def recolour(svg: bytes, colour: str) -> bytes:
    """Set the root ``color`` that the glyph's ``currentColor`` fills use."""
    ET.register_namespace("", "http://www.w3.org/2000/svg")
    root = ET.fromstring(svg)
    root.set("color", colour)
    return ET.tostring(root)


def make_all(package_dir: Path = PACKAGE_DIR, build_dir: Path = HERE) -> list[Path]:
    """Write every icon file; returns the paths written."""
    package_dir.mkdir(parents=True, exist_ok=True)
    build_dir.mkdir(parents=True, exist_ok=True)
    icon_svg = ICON_SVG.read_bytes()
    written: list[Path] = []

    def save(image: Image.Image, path: Path, **options: object) -> None:
        image.save(path, **options)
        written.append(path)

    shutil.copyfile(ICON_SVG, package_dir / "icon.svg")
    written.append(package_dir / "icon.svg")
    renders = {size: render(icon_svg, size) for size in sorted({*APP_SIZES, *ICO_SIZES, *ICNS_SIZES})}
    for size in APP_SIZES:
        save(renders[size], package_dir / f"icon-{size}.png", optimize=True)
    save(renders[1024], build_dir / "icon-1024.png", optimize=True)
    save(renders[256], build_dir / "cellucid-desktop.ico", sizes=[(s, s) for s in ICO_SIZES],
         append_images=[renders[s] for s in ICO_SIZES])
    save(renders[1024], build_dir / "cellucid-desktop.icns",
         append_images=[renders[s] for s in ICNS_SIZES if s != 1024])

    tray_svg = TRAY_SVG.read_bytes()
    for variant, colour in TRAY_COLOURS.items():
        svg = recolour(tray_svg, colour)
        for size in TRAY_SIZES:
            save(render(svg, size), package_dir / f"tray-{variant}-{size}.png", optimize=True)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package-dir", type=Path, default=PACKAGE_DIR,
                        help="where the runtime copies go (default: cellucid_desktop/assets)")
    parser.add_argument("--build-dir", type=Path, default=HERE,
                        help="where .ico/.icns/1024 px go (default: assets/)")
    args = parser.parse_args()
    for path in make_all(args.package_dir, args.build_dir):
        print(f"{path.stat().st_size:>8,}  {path}")


if __name__ == "__main__":
    main()
