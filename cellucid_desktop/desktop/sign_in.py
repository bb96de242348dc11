"""One prompt broker and one master connection per host for the whole app.

Every ssh the app runs for a remote file (browsing, starting the server, the forwards,
reconnects) goes through ``pool()``'s masters, so a password + one-time-code host asks
once per session; the questions appear in the prompt window (``prompt_window.py``).
Started on first use, so an app that never signs in opens no socket for it.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cellucid_desktop.remote.master import MasterPool
    from cellucid_desktop.remote.prompt_broker import FrontEnd, PromptBroker


class SignIn:
    def __init__(self, front_end: FrontEnd) -> None:
        self._front_end = front_end
        self._broker: PromptBroker | None = None
        self._pool: MasterPool | None = None
        self._lock = threading.Lock()
        self._closed = False

    def pool(self) -> MasterPool:
        """The app's MasterPool (its broker started on first use)."""
        from cellucid_desktop.remote.master import MasterPool
        from cellucid_desktop.remote.prompt_broker import PromptBroker

        with self._lock:
            if self._closed:
                raise RuntimeError("Cellucid Desktop is quitting")
            if self._pool is None:
                self._broker = PromptBroker(self._front_end).start()
                self._pool = MasterPool(self._broker)
            return self._pool

    def close(self) -> None:
        """Quit: end every master (after the connections using them were closed), then
        stop asking."""
        with self._lock:
            self._closed = True
            pool, broker = self._pool, self._broker
        if pool is not None:
            pool.close_all()
        if broker is not None:
            broker.close()
