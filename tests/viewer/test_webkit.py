"""The built-in viewer in WebKit, the engine of macOS's WKWebView: WebKitGTK (Debian's
gir1.2-webkit2-4.1) on a private Xvfb, driven by tests/viewer/webkit_driver.py in its own
process, against the real server. WebGL2 runs there on Mesa's software renderer."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from cellucid_desktop.server.runner import ServerThread
from tests.viewer.viewer_page import cell_pixels, colour_count

DRIVER = Path(__file__).with_name("webkit_driver.py")


def open_in_webkit(url: str, display: str, bus: str, *flags: str) -> dict:
    """Load `url` in a WebKitGTK window and return the driver's report."""
    env = {**os.environ, "DISPLAY": display, "DBUS_SESSION_BUS_ADDRESS": bus, "NO_AT_BRIDGE": "1"}
    done = subprocess.run([sys.executable, str(DRIVER), url, "--timeout", "60", *flags], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip(), f"WebKit driver failed: {done.stderr[-2000:]}"
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["errors"] == [], f"uncaught errors in the page: {report['errors']}"
    return report


def canvas(report: dict) -> np.ndarray:
    png = io.BytesIO(base64.b64decode(report["png"].split(",", 1)[1]))
    return np.asarray(Image.open(png).convert("RGB"))


def assert_every_category_drawn(report: dict, n_categories: int) -> None:
    assert report["state"] == "ready", report
    pixels = canvas(report)
    assert cell_pixels(pixels) > 5000
    colours = [tuple(c) for c in report["swatches"]]
    assert len(set(colours)) == n_categories
    for colour in colours:
        assert colour_count(pixels, colour) > 0, f"category colour {colour} not drawn"


def test_webkit_draws_the_default_view_with_distinct_category_colours(
        viewer_server: ServerThread, xserver: str, session_bus: str) -> None:
    report = open_in_webkit(f"{viewer_server.url}/", xserver, session_bus)
    assert report["webgl2"] == "function"
    assert_every_category_drawn(report, 14)
    export = report["export"]
    assert export["width"] == 2 * export["canvasWidth"]
    assert export["drawn"] > 2 * cell_pixels(canvas(report)), "the 2x export should draw ~4x the pixels"
    assert report["pick"]["index"] >= 0 and report["pick"]["distance"] < 10
    assert report["tooltip"][0] == "cell_type" and report["tooltip"][1] != "missing"


def test_webkit_draws_a_3d_embedding_coloured_by_batch(
        viewer_server: ServerThread, xserver: str, session_bus: str) -> None:
    report = open_in_webkit(f"{viewer_server.url}/?dataset=small-test&embedding=X_umap_3d&color=batch",
                            xserver, session_bus)
    assert_every_category_drawn(report, 3)
    # 3D picking is a GPU id pass read back with readPixels, unlike the 2D grid lookup.
    assert report["pick"]["index"] >= 0 and report["pick"]["distance"] < 10
    assert report["tooltip"][0] == "batch" and report["tooltip"][1].startswith("batch_")


def test_webkit_colours_cells_by_gene_expression(
        viewer_server: ServerThread, xserver: str, session_bus: str) -> None:
    report = open_in_webkit(f"{viewer_server.url}/?dataset=small-test&gene=GENE00003&source=X",
                            xserver, session_bus)
    assert report["state"] == "ready" and report["swatches"] == []
    pixels = canvas(report)
    drawn = np.any(pixels != pixels[0, 0], axis=-1)
    assert len(np.unique(pixels[drawn], axis=0)) >= 5, "expected a colour ramp, not one colour"
    assert report["tooltip"][0] == "GENE00003"


def test_webkit_without_webgl_shows_the_in_page_webgl2_error(
        viewer_server: ServerThread, xserver: str, session_bus: str) -> None:
    report = open_in_webkit(f"{viewer_server.url}/", xserver, session_bus, "--no-webgl")
    assert report["state"] == "error" and report["errorPanel"]
    assert report["error"].startswith("This viewer draws cells with WebGL2")
