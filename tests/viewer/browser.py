"""How the viewer tests and benchmark start Chromium: system browser, software WebGL2."""

from __future__ import annotations

from playwright.sync_api import Browser, Playwright

CHROMIUM = "/usr/bin/chromium"
# WebGL2 without a GPU: ANGLE on SwiftShader. Since Chromium 137 SwiftShader WebGL needs
# --enable-unsafe-swiftshader; --ignore-gpu-blocklist keeps it from being blocklisted.
CHROMIUM_ARGS = ["--no-sandbox", "--headless=new", "--use-gl=angle", "--use-angle=swiftshader",
                 "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def launch_chromium(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
