"""desktop/servers.py: one owner for every server; what a window key owns ends with it."""

from __future__ import annotations

import socket
import threading

from cellucid_desktop.desktop.servers import Servers
from cellucid_desktop.server.registry import DatasetRegistry


def test_a_key_owns_one_thing_replacing_stops_the_old_and_stop_all_ends_the_app_last() -> None:
    servers = Servers(DatasetRegistry())
    stopped: list[str] = []
    assert servers.start_app(0, [], ()) is None
    port = servers.app.port
    servers.adopt("remote:1", lambda: stopped.append("first"))
    servers.adopt("remote:1", lambda: stopped.append("second"))  # a reconnect's new session
    assert stopped == ["first"]
    servers.adopt("webapp:a", lambda: 1 / 0)  # a failing stop does not keep others running
    servers.adopt("remote:2", lambda: stopped.append("third"))
    servers.stop("remote:2")
    servers.stop("remote:2")  # twice is nothing
    assert stopped == ["first", "third"] and not servers.owns("remote:2")
    servers.stop_all()
    assert stopped == ["first", "third", "second"]
    assert not servers.owns("remote:1") and not servers.owns("webapp:a")
    with socket.socket() as probe:  # the app's server closed too
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_a_busy_port_is_replaced_by_a_free_one_with_a_sentence() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        servers = Servers(DatasetRegistry())
        sentence = servers.start_app(taken, [], ())
        try:
            assert sentence == (f"Port {taken} is in use, so Cellucid Desktop uses port "
                                f"{servers.app.port} this time; choose another port in "
                                "Settings.")
            assert servers.app.port != taken
        finally:
            servers.stop_all()


def test_quit_waits_for_a_stop_under_way_before_the_app_goes_on_ending_things() -> None:
    """Quit closes the windows first; a remote server then stops over ssh in the window's
    close handler. Ending the SSH masters before that finished left the server running."""
    servers = Servers(DatasetRegistry())
    started, release, order = threading.Event(), threading.Event(), []

    def slow_stop() -> None:  # a remote server's stop script over the master
        started.set()
        release.wait(10)
        order.append("remote server stopped")

    servers.adopt("remote:1", slow_stop)
    closing = threading.Thread(target=servers.stop, args=("remote:1",))
    closing.start()  # the window's close handler
    assert started.wait(10)
    threading.Timer(0.5, release.set).start()
    servers.stop_all()
    order.append("stop_all returned")  # then the masters end
    closing.join(10)
    assert order == ["remote server stopped", "stop_all returned"]
