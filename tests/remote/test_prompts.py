"""Prompt classification on the texts ssh really sends (OpenSSH 9.2 here; Duo's menu as
Duke's and UMN's clusters show it through OpenSSH >= 8.4), and what counts as a retry."""

from __future__ import annotations

import pytest

from cellucid_desktop.remote.prompts import PromptKind, Role, classify, is_retry

HOST_KEY = ("The authenticity of host '[127.0.0.1]:33377 ([127.0.0.1]:33377)' can't be "
            "established.\nED25519 key fingerprint is "
            "SHA256:4jIBwpnVcLKWrVgCv1E7apSHAA7hIzcaV7+3rJFwLTI.\nThis key is not known by any "
            "other names.\nAre you sure you want to continue connecting (yes/no/[fingerprint])? ")
DUO = ("(ams292@dcc-login.oit.duke.edu) Duo two-factor login for ams292\n\nEnter a passcode "
       "or select one of the following options:\n\n 1. Duo Push to XXX-XXX-0389\n 2. Duo Push "
       "to ipad (iOS)\n 3. Phone call to XXX-XXX-0389\n 4. SMS passcodes to XXX-XXX-0389\n\n"
       "Passcode or option (1-4): ")


def test_an_unknown_host_key_question_names_host_address_and_fingerprint() -> None:
    prompt = classify(HOST_KEY)
    assert prompt.kind is PromptKind.HOST_KEY and not prompt.hidden
    assert (prompt.host, prompt.address, prompt.key_type, prompt.fingerprint) == (
        "[127.0.0.1]:33377", "[127.0.0.1]:33377", "ED25519",
        "SHA256:4jIBwpnVcLKWrVgCv1E7apSHAA7hIzcaV7+3rJFwLTI")
    assert prompt.text == HOST_KEY


@pytest.mark.parametrize("text,role,user,host", [
    ("(alice@login.example.org) Password: ", Role.PASSWORD, "alice", "login.example.org"),
    ("alice@10.0.0.5's password: ", Role.PASSWORD, "alice", "10.0.0.5"),
    ("(cellmfa-1@127.0.0.1) One-time password (OATH) for `cellmfa-1': ", Role.CODE,
     "cellmfa-1", "127.0.0.1"),
    ("(bob@hpc) Verification code: ", Role.CODE, "bob", "hpc"),
    ("(bob@hpc) Enter your authentication code: ", Role.CODE, "bob", "hpc"),
    ("Enter passphrase for key '~/.ssh/id_ed25519': ", Role.PASSPHRASE, None, None),
    ("Enter PIN for ED25519-SK key ~/.ssh/id_ed25519_sk: ", Role.PIN, None, None),
    ("(bob@hpc) Token: ", Role.CODE, "bob", "hpc"),
    ("(bob@hpc) Answer the riddle: ", Role.OTHER, "bob", "hpc"),
])
def test_secret_prompts_are_hidden_and_say_what_they_ask(text: str, role: Role,
                                                         user: str | None,
                                                         host: str | None) -> None:
    prompt = classify(text)
    assert (prompt.kind, prompt.role, prompt.user, prompt.host) == \
        (PromptKind.SECRET, role, user, host)
    assert prompt.hidden


def test_a_passphrase_prompt_names_its_key_file() -> None:
    prompt = classify("Enter passphrase for key '~/my keys/id_rsa': ")
    assert prompt.key_file == "~/my keys/id_rsa"


def test_duo_menu_is_a_visible_choice_with_its_options() -> None:
    prompt = classify(DUO)
    assert (prompt.kind, prompt.role, prompt.user) == (PromptKind.TEXT, Role.CODE, "ams292")
    assert prompt.choices == ("Duo Push to XXX-XXX-0389", "Duo Push to ipad (iOS)",
                              "Phone call to XXX-XXX-0389", "SMS passcodes to XXX-XXX-0389")
    assert not prompt.hidden


@pytest.mark.parametrize("text,hint", [
    ("Please type 'yes', 'no' or the fingerprint: ", ""),
    ("Warning: the ECDSA host key for 'h' differs from the key for the IP address '10.0.0.1'"
     "\nOffending key for IP in ~/.ssh/known_hosts:3\nAre you sure you want to continue "
     "connecting (yes/no)? ", ""),
    ("Allow use of key ~/.ssh/id_ed25519?\nKey fingerprint SHA256:x.", "confirm"),
])
def test_other_yes_no_questions_are_confirmations(text: str, hint: str) -> None:
    assert classify(text, hint).kind is PromptKind.CONFIRM


def test_a_notice_needs_no_answer() -> None:
    prompt = classify("Confirm user presence for key ED25519-SK SHA256:abc", "none")
    assert prompt.kind is PromptKind.NOTICE


def test_a_user_name_prompt_is_visible() -> None:
    assert classify("(x@hpc) Username: ").kind is PromptKind.TEXT


def test_a_secret_asked_again_after_an_answer_is_a_retry() -> None:
    kbd = classify("(alice@10.0.0.5) Password: ")
    assert is_retry(classify("(alice@10.0.0.5) Password: "), [kbd])
    # the next method (password authentication) wanting the same user's password
    assert is_retry(classify("alice@10.0.0.5's password: "), [kbd])
    passphrase = classify("Enter passphrase for key '/k/id': ")
    assert is_retry(classify("Enter passphrase for key '/k/id': "), [passphrase])


def test_new_questions_are_not_retries() -> None:
    password = classify("(alice@login) Password: ")
    assert not is_retry(classify("(alice@login) One-time password (OATH) for `alice': "),
                        [password])
    assert not is_retry(classify("(alice@gateway) Password: "), [password])  # another hop
    assert not is_retry(classify("Enter passphrase for key '/k/other': "),
                        [classify("Enter passphrase for key '/k/id': ")])
    assert not is_retry(classify("(alice@login) You are required to change your password "
                                 "immediately\nNew password: "), [password])
    duo = classify(DUO)
    assert not is_retry(classify(DUO), [duo])  # Duo asks again after sending SMS codes
