"""The ssh argv and its copyable display: shapes, quoting, and what is refused."""

from __future__ import annotations

import shlex

import pytest

from cellucid_desktop.remote.ssh_command import (SpecError, TunnelSpec, display_command,
                                                 server_command, tunnel_argv)


def test_direct_tunnel_argv_binds_loopback_and_adds_supervisor_options() -> None:
    argv = tunnel_argv(TunnelSpec("alice@hpc.example.org", 8765), 8765)
    assert argv[:4] == ["ssh", "-N", "-L", "127.0.0.1:8765:127.0.0.1:8765"]
    options = [argv[i + 1] for i, word in enumerate(argv) if word == "-o"]
    assert {"ExitOnForwardFailure=yes", "BatchMode=yes", "ServerAliveInterval=15",
            "ServerAliveCountMax=3", "ConnectTimeout=10"} <= set(options)
    assert argv[-1] == "alice@hpc.example.org"


def test_compute_node_form_forwards_to_the_node_through_the_login_host() -> None:
    spec = TunnelSpec("login.example.org", 9000, node="c042", jump=("gw1,gw2",),
                      ssh_port=2222, identity_file="/srv/keys/id ed")
    argv = tunnel_argv(spec, 9001)
    assert "127.0.0.1:9001:c042:9000" in argv
    assert argv[argv.index("-J") + 1] == "gw1,gw2"
    assert argv[argv.index("-p") + 1] == "2222"
    assert argv[argv.index("-i") + 1] == "/srv/keys/id ed"


def test_display_command_is_shell_quoted_and_prompts_are_allowed() -> None:
    spec = TunnelSpec("login", 8765, identity_file="/keys/my key")
    shown = display_command(spec, 8766)
    assert shown == "ssh -N -L 127.0.0.1:8766:127.0.0.1:8765 -i '/keys/my key' login"
    assert shlex.split(shown) == tunnel_argv(spec, 8766, supervised=False)
    assert "BatchMode" not in shown


@pytest.mark.parametrize("target", ["-oProxyCommand=touch /tmp/x", "host name", "host\nx",
                                    "", "  "])
def test_targets_that_ssh_could_read_as_options_or_several_words_are_refused(target: str) -> None:
    with pytest.raises(SpecError):
        TunnelSpec(target).validated()


@pytest.mark.parametrize("field,value", [("jump", ("-J",)), ("jump", ("ok,-oX=y",)),
                                         ("node", "-c042"), ("node", "user@c042"),
                                         ("node", "c042:80"), ("identity_file", "-i")])
def test_other_fields_are_checked_too(field: str, value: object) -> None:
    with pytest.raises(SpecError):
        TunnelSpec("login", **{field: value}).validated()


@pytest.mark.parametrize("option", ["ProxyCommand=nc %h %p", "LocalCommand=id",
                                    "PermitLocalCommand=yes", "RemoteCommand=bash",
                                    "LocalForward=0.0.0.0:1 x:1", "GatewayPorts=yes",
                                    "ControlPersist=yes", "BatchMode=no",
                                    "KnownHostsCommand=/bin/x", "Ciphers", "=yes"])
def test_extra_options_outside_the_allow_list_are_refused(option: str) -> None:
    with pytest.raises(SpecError):
        TunnelSpec("login", options=(option,)).validated()


def test_allowed_extra_options_follow_the_supervisor_options() -> None:
    argv = tunnel_argv(TunnelSpec("login", options=("-o ServerAliveInterval=30",
                                                    "Compression=yes")), 8765)
    values = [argv[i + 1] for i, word in enumerate(argv) if word == "-o"]
    # ssh keeps the first value it sees for an option: ours come first on purpose.
    assert values.index("ServerAliveInterval=15") < values.index("ServerAliveInterval=30")
    assert "Compression=yes" in values


@pytest.mark.parametrize("port", [0, 65536, -1])
def test_ports_out_of_range_are_refused(port: int) -> None:
    with pytest.raises(SpecError):
        TunnelSpec("login", remote_port=port).validated()


def test_server_command_names_the_port_and_no_web_ui_for_offline_nodes() -> None:
    assert server_command("my data.h5ad", 9000, offline=True) == \
        "cellucid serve 'my data.h5ad' --no-browser --port 9000 --no-web-ui"
    assert server_command("d.h5ad", 8765, program="cellucid-desktop") == \
        "cellucid-desktop serve d.h5ad --no-browser --port 8765"


def test_a_remote_socket_is_forwarded_by_path() -> None:
    spec = TunnelSpec("alice@hpc", remote_socket="/run/user/1000/cellucid-desktop/s.sock")
    argv = tunnel_argv(spec, 8765)
    assert argv[:4] == ["ssh", "-N", "-L", "127.0.0.1:8765:/run/user/1000/cellucid-desktop/s.sock"]
    assert "--socket /run/user/1000/cellucid-desktop/s.sock" in server_command(
        "d.h5ad", program="cellucid-desktop", socket=spec.remote_socket)


@pytest.mark.parametrize("socket, node, problem", [
    ("relative.sock", None, "absolute path"),
    ("/run/user/1000/a b.sock", None, "without spaces"),
    ("/" + "s" * 120 + ".sock", None, "longer than"),
    ("/run/user/1000/a:b.sock", None, "':'"),
    ("/run/user/1000/s.sock", "c042", "SSH to the node itself")])
def test_unusable_remote_sockets_are_refused(socket: str, node: str | None,
                                             problem: str) -> None:
    with pytest.raises(SpecError, match=problem):
        TunnelSpec("alice@hpc", remote_socket=socket, node=node).validated()
