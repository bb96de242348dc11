"""Naming hosts as the user knows them: ``ssh -G`` resolution of the target and each jump
host, and the names ssh uses in its messages."""

from __future__ import annotations

from pathlib import Path

from cellucid_desktop.remote.hops import Hop, hop_names, parse_config, query_argv, resolve_hops
from cellucid_desktop.remote.ssh_command import HostSpec


def test_jump_entries_are_queried_as_sshs_own_jump_command_sees_them() -> None:
    host = HostSpec("login", jump=("alice@gw:2222,[fe80::1]",), config_file="/cfg",
                    options=("Port=2200",))
    assert query_argv(host, "alice@gw:2222") == ["ssh", "-G", "-F", "/cfg", "-l", "alice",
                                                 "-p", "2222", "gw"]
    assert query_argv(host, "[fe80::1]") == ["ssh", "-G", "-F", "/cfg", "fe80::1"]
    assert query_argv(host)[-3:] == ["-o", "Port=2200", "login"]


def test_real_resolution_through_a_config_file(tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text("Host gw\n  HostName 10.1.2.3\n  User bob\n"
                      "Host login\n  HostName login.example.org\n  Port 2222\n  User alice\n")
    hops = resolve_hops(HostSpec("login", jump=("gw",), config_file=str(config)))
    assert hops == [Hop("the jump host gw", "bob", "10.1.2.3", 22),
                    Hop("login", "alice", "login.example.org", 2222)]
    assert hop_names(hops) == {"bob@10.1.2.3": "the jump host gw", "10.1.2.3": "the jump host gw",
                               "alice@login.example.org": "login",
                               "[login.example.org]:2222": "login"}


def test_names_two_hops_share_are_left_out() -> None:
    hops = [Hop("the jump host gw", "bob", "127.0.0.1", 2201), Hop("login", "bob", "127.0.0.1",
                                                                    2202)]
    assert hop_names(hops) == {"[127.0.0.1]:2201": "the jump host gw",
                               "[127.0.0.1]:2202": "login"}


def test_the_first_value_of_a_key_wins() -> None:
    assert parse_config("hostname a\nHostName b\nport 22\n") == {"hostname": "a", "port": "22"}
