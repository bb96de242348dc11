"""The tray icon image: ``assets/tray-*.png`` when the package ships one, else drawn."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def tray_image(size: int = 64) -> Image.Image:
    """The largest shipped ``tray-*.png``, or a drawn cluster of coloured cells."""
    shipped = sorted(ASSETS.glob("tray-*.png"), key=lambda p: p.stat().st_size)
    if shipped:
        return Image.open(shipped[-1]).convert("RGBA")
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((2, 2, size - 3, size - 3), fill=(28, 36, 52, 255))
    dots = [(0.35, 0.38, (239, 83, 80)), (0.62, 0.33, (66, 165, 245)),
            (0.50, 0.62, (102, 187, 106)), (0.30, 0.65, (255, 202, 40)),
            (0.70, 0.62, (171, 71, 188))]
    r = size * 0.11
    for fx, fy, colour in dots:
        cx, cy = fx * size, fy * size
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(*colour, 255))
    return image
