"""What ssh is asking: a prompt's text (as ssh gives it to SSH_ASKPASS) classified.

Pure functions, no I/O. The classification decides how a front end asks (hidden entry,
visible entry, yes/no) and lets error messages say what was wrong (password, passphrase,
one-time code); the front end always shows ``Prompt.text`` itself, since only ssh's own
words say exactly what the server wants.

Texts seen from OpenSSH 9.2 (kept in the tests):

* keyboard-interactive, prefixed by ssh with ``(user@host) ``: ``Password: ``,
  ``One-time password (OATH) for `user': ``, Duo's menu ending ``Passcode or option (1-3): ``
  (PAM info messages arrive as leading lines of the same prompt);
* password authentication: ``user@host's password: ``;
* a key: ``Enter passphrase for key '~/.ssh/id_ed25519': `` (ssh writes the path in full);
* an unknown host key: ``The authenticity of host 'NAME (ADDRESS)' can't be established.``
  ... ``ED25519 key fingerprint is SHA256:...`` ... ``(yes/no/[fingerprint])? ``;
* ``SSH_ASKPASS_PROMPT=confirm`` (a yes/no with no text answer) and ``=none`` (a notice
  shown while a security key waits for a touch; ssh ends the helper itself).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass


class PromptKind(str, enum.Enum):
    SECRET = "secret"      # hidden entry: password, passphrase, PIN, code, anything unknown
    TEXT = "text"          # visible entry: a menu choice, a user name
    CONFIRM = "confirm"    # yes / no
    HOST_KEY = "host-key"  # yes / no about an unknown host key (host + fingerprint parsed)
    NOTICE = "notice"      # nothing to answer


class Role(str, enum.Enum):
    """What a secret or text prompt asks for (for messages such as "the code was wrong")."""

    PASSWORD = "password"
    PASSPHRASE = "passphrase"
    CODE = "one-time code"
    PIN = "PIN"
    OTHER = "answer"


@dataclass(frozen=True)
class Prompt:
    """One question from ssh. ``text`` is exactly what ssh asked; the rest is parsed out
    of it where present (``user``/``host`` from the ``(user@host)`` prefix or a password
    prompt, ``host``/``address``/``key_type``/``fingerprint`` from a host-key question,
    ``key_file`` from a passphrase prompt, ``choices`` from a numbered menu)."""

    text: str
    kind: PromptKind
    role: Role = Role.OTHER
    user: str | None = None
    host: str | None = None
    address: str | None = None
    key_type: str | None = None
    fingerprint: str | None = None
    key_file: str | None = None
    choices: tuple[str, ...] = ()

    @property
    def hidden(self) -> bool:
        """Whether typed text must not be shown."""
        return self.kind is PromptKind.SECRET


class Outcome(str, enum.Enum):
    """What became of a prompt (``AskpassSession.records``)."""

    ANSWERED = "answered"
    DECLINED = "declined"    # "no" to a host key or yes/no question
    CANCELLED = "cancelled"  # the user cancelled
    REFUSED = "refused"      # not asked: a repeat of an answered secret, or after a cancel
    CLOSED = "closed"        # not asked: the session was over


@dataclass(frozen=True)
class PromptRecord:
    prompt: Prompt
    outcome: Outcome


_PREFIX = re.compile(r"^\(([^@()\s]+)@([^()\s]+)\) ")
_PASSWORD_PROMPT = re.compile(r"^(\S+)@(\S+)'s password: ?$")
_AUTHENTICITY = re.compile(r"authenticity of host '(\S+) \(([^)]*)\)'")
_FINGERPRINT = re.compile(r"^(\S+) key fingerprint is (\S+?)\.?$", re.M)
_YES_NO = re.compile(r"\(yes/no(?:/\[fingerprint\])?\)\?\s*$|Please type 'yes'", re.I)
_MENU_ITEM = re.compile(r"^\s*(\d+)\.\s+(.+?)\s*$", re.M)
_KEY_FILE = re.compile(r"passphrase for (?:key )?'([^']+)'", re.I)
_CODE = re.compile(r"one[- ]time|\botp\b|\boath\b|verification|passcode|token|"
                   r"authenticat(?:or|ion) code|\bcode\b|two[- ]factor|\b2fa\b|\bduo\b", re.I)
_PIN = re.compile(r"\bPIN\b")
_USER_NAME = re.compile(r"(?:user ?name|login)\s*:\s*$", re.I)


def classify(text: str, hint: str = "") -> Prompt:
    """Classify one prompt; ``hint`` is SSH_ASKPASS_PROMPT as ssh set it ("", "confirm",
    "none"). Unknown questions are secret: hiding typed text is the safe default."""
    if hint == "none":
        return Prompt(text, PromptKind.NOTICE)
    body, user, host = text, None, None
    prefix = _PREFIX.match(text)
    if prefix:
        user, host = prefix.group(1), prefix.group(2)
        body = text[prefix.end():]
    authenticity = _AUTHENTICITY.search(body)
    if authenticity and _YES_NO.search(body):
        fingerprint = _FINGERPRINT.search(body)
        return Prompt(text, PromptKind.HOST_KEY, host=authenticity.group(1),
                      address=authenticity.group(2),
                      key_type=fingerprint.group(1) if fingerprint else None,
                      fingerprint=fingerprint.group(2) if fingerprint else None)
    if hint == "confirm" or _YES_NO.search(body):
        return Prompt(text, PromptKind.CONFIRM, user=user, host=host)
    password = _PASSWORD_PROMPT.match(body)
    if password:
        return Prompt(text, PromptKind.SECRET, Role.PASSWORD, password.group(1),
                      password.group(2))
    last_line = body.rstrip().rsplit("\n", 1)[-1]
    choices = tuple(item.group(2) for item in _MENU_ITEM.finditer(body))
    if choices and re.search(r"option", last_line, re.I):
        return Prompt(text, PromptKind.TEXT, Role.CODE, user, host, choices=choices)
    key_file = _KEY_FILE.search(body)
    if re.search(r"passphrase", last_line, re.I):
        return Prompt(text, PromptKind.SECRET, Role.PASSPHRASE, user, host,
                      key_file=key_file.group(1) if key_file else None)
    if _CODE.search(last_line):
        return Prompt(text, PromptKind.SECRET, Role.CODE, user, host)
    if _PIN.search(last_line):
        return Prompt(text, PromptKind.SECRET, Role.PIN, user, host)
    if re.search(r"password", last_line, re.I):
        return Prompt(text, PromptKind.SECRET, Role.PASSWORD, user, host)
    if _USER_NAME.search(last_line):
        return Prompt(text, PromptKind.TEXT, Role.OTHER, user, host)
    return Prompt(text, PromptKind.SECRET, Role.OTHER, user, host)


_CHANGE = re.compile(r"\bnew\b|retype|again|current|confirm", re.I)


def is_retry(prompt: Prompt, answered: list[Prompt]) -> bool:
    """Whether ``prompt`` asks again for a secret already answered in the same sign-in:
    ssh retrying after a wrong one (a second passphrase try for the same key, the next
    authentication method asking the same user's password), not a new question. A
    password change (new, retype, current) and visible prompts such as Duo's menu, which
    asks again after sending codes by SMS, are new questions."""
    if prompt.kind is not PromptKind.SECRET:
        return False
    last_line = prompt.text.rstrip().rsplit("\n", 1)[-1]
    for earlier in answered:
        if earlier.kind is not PromptKind.SECRET:
            continue
        if earlier.text == prompt.text:
            return True
        same_secret = (prompt.role is not Role.OTHER and prompt.role is earlier.role
                       and (prompt.user, prompt.host, prompt.key_file)
                       == (earlier.user, earlier.host, earlier.key_file))
        if same_secret and not _CHANGE.search(last_line):
            return True
    return False
