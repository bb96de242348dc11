"""The loopback HTTP server: Cellucid protocol, data API and viewer assets."""
