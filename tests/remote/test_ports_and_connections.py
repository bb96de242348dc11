"""Local ports (free, chosen, who holds one) and the saved-connections file."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from cellucid_desktop import paths
from cellucid_desktop.remote.connections import Connection, ConnectionStore
from cellucid_desktop.remote import ports
from cellucid_desktop.remote.ports import choose_local_port, is_free, who_holds
from cellucid_desktop.remote.ssh_command import TunnelSpec
from tests.helpers import wait_for


def test_the_remote_port_is_kept_when_free_else_the_next_free_one() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert not is_free(port)
        chosen = choose_local_port(port)
        assert chosen != port and is_free(chosen)
    assert choose_local_port(port) == port


def _port_left_in_time_wait() -> int:
    """A port whose listener is gone but whose accepted connection closed first, so it
    lingers in TIME_WAIT, as ssh's local end does after ssh is killed mid-request (ssh
    listens with SO_REUSEADDR, which Linux requires of the lingering socket too)."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = listener.accept()
        accepted.close()  # the listening side closes first: its end goes to TIME_WAIT
        client.recv(1)
        client.close()
    return port


def test_a_port_in_time_wait_is_free_as_ssh_sees_it_and_a_listener_is_not() -> None:
    port = _port_left_in_time_wait()
    assert is_free(port)  # ssh binds with SO_REUSEADDR: it could listen here
    assert choose_local_port(port) == port  # so a reconnect keeps the user's URL
    with socket.socket() as again:  # and indeed it can
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))
        again.listen()
        assert not is_free(port)


@pytest.mark.parametrize("table", ["proc", "lsof"])
def test_only_a_listener_reached_through_127_0_0_1_holds_its_port(table: str) -> None:
    """A server on 127.0.0.2 (a "compute node" here) with the same port number does not
    hold 127.0.0.1's port: a tunnel's ssh binding 127.0.0.1:P is its holder."""
    look = {"proc": ports._proc_holder, "lsof": ports._lsof_holder}[table]
    with socket.socket() as node:
        node.bind(("127.0.0.2", 0))
        node.listen()
        port = node.getsockname()[1]
        assert look(port) is None and is_free(port)
        with socket.socket() as ours:
            ours.bind(("127.0.0.1", port))
            ours.listen()
            assert look(port) == (os.getpid(), look(port)[1])


def test_who_holds_names_another_process_listening_on_a_port() -> None:
    script = ("import socket,time; s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen();"
              "print(s.getsockname()[1], flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        port = int(holder.stdout.readline())
        found = wait_for(lambda: who_holds(port), what="the holder of the port")
        assert f"(PID {holder.pid})" in found and "socket" in found
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


def test_nobody_holds_a_free_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert who_holds(port) is None


def test_saved_connections_round_trip_and_replace_by_name() -> None:
    store = ConnectionStore()
    spec = TunnelSpec("alice@hpc", 9000, jump=("gw",), node="c042", identity_file="/k/id")
    store.save(Connection("cluster", spec, extra={"data_path": "/scratch/a.h5ad"}))
    store.save(Connection("forwarded", port=8765))
    store.save(Connection("cluster", TunnelSpec("alice@hpc", 9001)))
    again = ConnectionStore()
    assert [c.name for c in again.saved()] == ["cluster", "forwarded"]
    assert again.get("cluster").spec.remote_port == 9001
    assert again.get("forwarded").describe == "127.0.0.1:8765 (already forwarded)"
    assert store.path.parent == paths.config_dir()
    assert again.delete("forwarded") and not again.delete("forwarded")


def test_recent_remotes_are_newest_first_without_duplicates() -> None:
    store = ConnectionStore()
    first = Connection("a", TunnelSpec("a@x", 8765))
    second = Connection("b", TunnelSpec("b@y", 8765, jump=("gw",)))
    store.note_used(first)
    store.note_used(second)
    store.note_used(first)
    assert [c.spec.target for c in store.recent()] == ["a@x", "b@y"]


def test_hand_edited_entries_that_no_longer_validate_are_skipped() -> None:
    store = ConnectionStore()
    store.save(Connection("good", TunnelSpec("ok@host")))
    data = json.loads(store.path.read_text())
    bad = dict(data["saved"][0], name="bad")
    bad["spec"] = dict(bad["spec"], target="-oProxyCommand=x")
    data["saved"].append(bad)
    store.path.write_text(json.dumps(data))
    assert [c.name for c in ConnectionStore().saved()] == ["good"]
    assert not [p for p in os.listdir(store.path.parent) if p.endswith(".tmp")]


def test_dialog_fields_and_specs_convert_both_ways() -> None:
    from cellucid_desktop.remote.connections import form_from_spec, spec_from_form
    from cellucid_desktop.remote.ssh_command import SpecError

    spec = TunnelSpec("alice@hpc", 9000, jump=("gw1", "gw2"), node="c042", ssh_port=2222,
                      identity_file="/k/id", options=("Compression=yes",)).validated()
    assert spec_from_form(form_from_spec(spec)) == spec
    form = {"target": "alice@hpc", "where": "host", "node": "ignored", "remote_port": "",
            "local_port": " ", "options": "\n"}
    assert spec_from_form(form) == TunnelSpec("alice@hpc").validated()
    for bad in ({"target": "x", "where": "node", "node": ""},
                {"target": "x", "remote_port": "80a"},
                {"target": "x", "options": "ProxyCommand=sh"}):
        with pytest.raises(SpecError):
            spec_from_form(bad)
