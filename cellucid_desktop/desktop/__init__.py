"""The desktop app: tray process, pywebview windows, home/settings pages, single instance.

This is the only layer that imports pywebview and pystray (always inside functions or
in modules the CLI imports lazily, so `cellucid-desktop --help` stays instant).
"""
