"""Driving the viewer page from tests: load and wait for its state, read the plot's pixels."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image
from playwright.sync_api import Locator, Page

from cellucid_desktop.server.access import url_with_token


def open_viewer(page: Page, base_url: str, query: str = "", expect: str = "ready",
                token: str | None = None) -> str:
    """Load the viewer and wait until it reports `expect`; returns the final state.
    With the server's `token` the first load sets the page's cookie, as the app's windows do."""
    page.goto(url_with_token(f"{base_url}/{query}", token))
    return wait_state(page, expect)


def wait_state(page: Page, expect: str = "ready") -> str:
    page.wait_for_function("s => document.documentElement.dataset.viewerState === s", arg=expect,
                           timeout=60_000)
    return expect


def plot_pixels(page: Page) -> np.ndarray:
    """The plot canvas as an RGB array: what WebGL drew, without any overlay."""
    data_url = page.evaluate("document.getElementById('plot').toDataURL('image/png')")
    png = io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))
    return np.asarray(Image.open(png).convert("RGB"))


def element_pixels(page: Page, selector: str) -> np.ndarray:
    """What the screen shows of one element (a screenshot of it), as an RGB array."""
    data = page.locator(selector).screenshot(type="png", animations="disabled")
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def colormap_lut(page: Page, name: str) -> np.ndarray:
    """The 256 RGB colours of a colour map, from the viewer's own table (what the shader uses)."""
    lut = page.evaluate("async n => Array.from((await import('/viewer/js/colors.js')).colormapLut(n))", name)
    return np.asarray(lut, dtype=np.uint8).reshape(256, 4)[:, :3]


def background(pixels: np.ndarray) -> np.ndarray:
    """The most common colour: the plot background."""
    colours, counts = np.unique(pixels.reshape(-1, 3), axis=0, return_counts=True)
    return colours[counts.argmax()]


def cell_pixels(pixels: np.ndarray) -> int:
    """How many pixels differ from the background."""
    return int(np.any(pixels != background(pixels), axis=-1).sum())


def colour_count(pixels: np.ndarray, rgb: tuple[int, int, int]) -> int:
    return int(np.all(pixels == np.array(rgb, dtype=np.uint8), axis=-1).sum())


def set_range(page: Page, selector: str, value: float) -> None:
    """Move a slider the way a user's drag ends: value set, input event fired."""
    page.eval_on_selector(selector,
                          "(el, v) => { el.value = String(v); el.dispatchEvent(new Event('input')); }", value)
    page.evaluate("window.cellucidViewer.renderer.requestRender()")


def settle(page: Page) -> None:
    """Wait until any frame the last action scheduled has been drawn."""
    page.evaluate("window.cellucidViewer.renderer.requestRender()")


def _rgb(css: str) -> tuple[int, int, int]:
    return tuple(int(v) for v in css[css.index("(") + 1:css.index(")")].split(",")[:3])


def swatch_colours(page: Page) -> list[tuple[int, int, int]]:
    """The legend's category colours, in legend order."""
    css = page.eval_on_selector_all(".legend-row:not(.missing) .swatch",
                                    "els => els.map(e => getComputedStyle(e).backgroundColor)")
    return [_rgb(c) for c in css]


def swatch_colour_of(row: Locator) -> tuple[int, int, int]:
    return _rgb(row.locator(".swatch").evaluate("e => getComputedStyle(e).backgroundColor"))


def hover_a_cell(page: Page) -> str:
    """Rest the mouse inside a densely drawn spot; returns the tooltip's text (lines apart)
    once it shows the cell's barcode (fetched from the cells route)."""
    pixels = plot_pixels(page)
    drawn = np.any(pixels != background(pixels), axis=-1)
    dense = drawn[:-6, :-6] & drawn[6:, 6:] & drawn[6:, :-6] & drawn[:-6, 6:]
    ys, xs = np.nonzero(dense)
    box = page.locator("#plot").bounding_box()
    page.mouse.move(box["x"] + float(xs[0]) + 3, box["y"] + float(ys[0]) + 3)
    tooltip = page.locator("#tooltip")
    tooltip.wait_for(state="visible")
    page.wait_for_function("document.getElementById('tooltip').innerText.includes(' · row ')")
    return tooltip.inner_text()


def plot_box(page: Page) -> dict[str, float]:
    return page.locator("#plot").bounding_box()


def draw_lasso(page: Page, fractions: list[tuple[float, float]], hold: str | None = None) -> None:
    """Drag the lasso through points given as fractions of the plot (lasso mode on), with
    a modifier key (Shift, Alt) held if asked."""
    box = plot_box(page)
    points = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in fractions]
    if hold:
        page.keyboard.down(hold)
    page.mouse.move(*points[0])
    page.mouse.down()
    for point in points[1:] + points[:1]:
        page.mouse.move(*point, steps=6)
    page.mouse.up()
    if hold:
        page.keyboard.up(hold)


def rectangle(x0: float, y0: float, x1: float, y1: float) -> list[tuple[float, float]]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def selected_count(page: Page) -> int:
    """The count the sidebar shows (0 when nothing is selected)."""
    if page.locator("#selection").is_hidden():
        return 0
    text = page.locator("#selection-count").text_content()
    return int(text.split(" cells")[0].replace(",", ""))


def select_category(page: Page, index: int, hold: str | None = None) -> None:
    """Press the Select button of legend row `index` (it shows on hover), a modifier held if asked."""
    row = page.locator(".legend-row").nth(index)
    row.hover()
    if hold:
        page.keyboard.down(hold)
    row.locator(".legend-select").click()
    if hold:
        page.keyboard.up(hold)


def answer_name(page: Page, button: str, name: str) -> None:
    """Press a button that asks for a name (Keep…, Save as column…) and give it."""
    page.locator(button).click()
    page.locator(".ask-name input").fill(name)
    page.keyboard.press("Enter")


def select_where(page: Page, condition: str) -> str:
    """Type a condition under "Select by value" (open) and wait for its outcome: done or failed."""
    page.locator("#range-query").fill(condition)
    page.locator("#range-query").press("Enter")
    page.wait_for_function("document.documentElement.dataset.rangeState !== 'running'")
    return page.evaluate("document.documentElement.dataset.rangeState")
