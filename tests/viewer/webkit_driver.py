"""Open a viewer URL in WebKitGTK (the engine of macOS's WKWebView) and print what it did.

Run as its own process (GTK wants the main thread):
`python webkit_driver.py URL [--timeout S] [--no-webgl]`. Waits until the page reports
`ready` or `error`, then prints one JSON object on stdout: state, error message, uncaught
page errors, WebGL2 support, whether the error panel shows, the legend's swatch colours,
the plot canvas as a PNG data URL (drawn at full opacity so category colours are exact),
a 2x PNG export's size and drawn pixels, and the cell picked under a projected point.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import gi

gi.require_version("Gtk", "3.0")
gi.require_version("WebKit2", "4.1")
from gi.repository import GLib, Gtk, WebKit2  # noqa: E402

# Collects what the page throws, since WebKitGTK has no "page error" signal.
CATCH_ERRORS = """
window.__pageErrors = [];
addEventListener("error", (e) => __pageErrors.push(String(e.message)));
addEventListener("unhandledrejection", (e) => __pageErrors.push(String(e.reason)));
"""

STATE = "return document.documentElement.dataset.viewerState || '';"

PROBE = """
const root = document.documentElement;
const out = { state: root.dataset.viewerState, error: root.dataset.viewerError || "",
              errors: window.__pageErrors || [], webgl2: typeof WebGL2RenderingContext,
              errorPanel: !document.getElementById("error").hidden };
if (out.state === "ready") {
  const opacity = document.getElementById("opacity-input");
  opacity.value = "1";
  opacity.dispatchEvent(new Event("input"));
  await window.cellucidViewer.renderer.requestRender();
  out.png = document.getElementById("plot").toDataURL("image/png");
  out.swatches = [...document.querySelectorAll(".legend-row:not(.missing) .swatch")]
    .map((e) => getComputedStyle(e).backgroundColor.match(/\d+/g).slice(0, 3).map(Number));
  const viewer = window.cellucidViewer;
  const image = await viewer.renderer.renderImage(2);
  const rgba = new Uint32Array(image.pixels.buffer);
  const drawn = rgba.reduce((n, v) => n + (v !== rgba[0]), 0);
  out.export = { width: image.width, height: image.height, canvasWidth: viewer.renderer.canvas.width, drawn };
  const xy = viewer.renderer.projectAll();
  const i = xy.findIndex((v, k) => k % 2 === 0 && v > 0 && xy[k + 1] > 0) / 2;
  const index = viewer.pick(xy[2 * i], xy[2 * i + 1]);
  out.pick = { index, distance: Math.hypot(xy[2 * index] - xy[2 * i], xy[2 * index + 1] - xy[2 * i + 1]) };
  out.tooltip = index >= 0 ? viewer.describe(index) : null;
}
return JSON.stringify(out);
"""


class Driver:
    def __init__(self, url: str, timeout: float, webgl: bool) -> None:
        self.deadline = time.monotonic() + timeout
        manager = WebKit2.UserContentManager()
        manager.add_script(WebKit2.UserScript(CATCH_ERRORS, WebKit2.UserContentInjectedFrames.TOP_FRAME,
                                              WebKit2.UserScriptInjectionTime.START, None, None))
        self.view = WebKit2.WebView.new_with_user_content_manager(manager)
        settings = self.view.get_settings()
        settings.set_enable_webgl(webgl)
        self.view.connect("load-failed", self.on_load_failed)
        window = Gtk.Window(default_width=1100, default_height=720)
        window.add(self.view)
        window.show_all()
        self.view.load_uri(url)
        GLib.timeout_add(200, self.poll)

    def call(self, body: str, done: Callable[[str], None]) -> None:
        """Run an async JS function body; `done` gets its result as a string."""
        def returned(view: WebKit2.WebView, result) -> None:
            try:
                value = view.call_async_javascript_function_finish(result).to_string()
            except GLib.Error as err:  # the script threw: report it instead of hanging
                self.finish({"state": "script-failed", "error": err.message, "errors": []})
                return
            done(value)
        self.view.call_async_javascript_function(body, -1, None, None, None, None, returned)

    def finish(self, report: dict) -> None:
        print(json.dumps(report), flush=True)
        Gtk.main_quit()

    def on_load_failed(self, _view, _event, uri: str, error: GLib.Error) -> bool:
        self.finish({"state": "load-failed", "error": f"{uri}: {error.message}", "errors": []})
        return True

    def poll(self) -> bool:
        def got(state: str) -> None:
            if state in ("ready", "error"):
                self.call(PROBE, lambda report: self.finish(json.loads(report)))
            elif time.monotonic() > self.deadline:
                self.finish({"state": "timeout", "error": f"still {state!r}", "errors": []})
            else:
                GLib.timeout_add(200, self.poll)
        self.call(STATE, got)
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--timeout", type=float, default=60, help="seconds to wait for ready/error")
    parser.add_argument("--no-webgl", action="store_true", help="turn WebGL off in the web view")
    args = parser.parse_args()
    Driver(args.url, args.timeout, webgl=not args.no_webgl)
    Gtk.main()


if __name__ == "__main__":
    main()
