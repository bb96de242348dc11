"""Remote Cellucid servers: SSH tunnels built, run and watched; probing; a local proxy.

Layering: this package uses ``server/`` and ``data/`` and never imports the GUI.
"""
