"""Every shell text we run on a remote host, built here and nowhere else.

Three rules keep user text from ever being interpreted by a remote shell:

* What goes on ssh's command line is an argv list (``Master.run``/``start_command``
  quote each word with ``shlex.quote``): ``in_login_shell(env)`` is a fixed POSIX
  ``sh -c`` line plus the environment line as one quoted argument.
* Our scripts are fixed POSIX ``sh`` text with the user's values (paths, names, Slurm
  options) put in at the top as ``name='quoted value'`` assignments (``_assign``), and
  used only as ``"$name"``. A script arrives on the remote ``sh``'s standard input,
  never on a command line, so the access token it writes to its 0600 file appears in no
  ``ps`` listing.
* The one value deliberately interpreted is the environment line (``module load
  python; source ~/venv/bin/activate``): it is shell text the user wrote for their own
  login shell, run there as their ``.bashrc`` would be.

Scripts answer with lines ``<marker> <key> <value>`` (``Reply``), so whatever a login
profile prints on the way is ignored.

``in_login_shell``: the user's login shell (``$SHELL -l``: ``/etc/profile``,
``~/.profile``, module systems, ``~/.local/bin`` on PATH) runs the environment line and
then ``exec /bin/sh -s``, which reads our script from standard input.
"""

from __future__ import annotations

import re
import secrets
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# The outer line, parsed by whatever shell the user has (sh, bash, zsh, csh, fish all
# accept a plain word list): POSIX sh picks the login shell. csh and tcsh take -l only
# alone, and read .cshrc without it anyway.
_LOGIN = ('case "${SHELL##*/}" in csh|tcsh) exec "$SHELL" -c "$1";; '
          '*) exec "${SHELL:-/bin/sh}" -l -c "$1";; esac')
RUN_BASE = ".cellucid-desktop"  # in the remote home: runs/<random>/ (0700) per server
PRUNE_DAYS = 14  # a stopped server's run folder (its log) is removed after this many days
WEB_UI_URL = "https://www.cellucid.com/"  # where cellucid 0.9.5 fetches its web UI


def in_login_shell(env: str = "") -> list[str]:
    """The remote argv: the login shell runs ``env`` (the user's environment line, may be
    empty), then ``/bin/sh -s`` runs the script given on standard input."""
    inner = "exec /bin/sh -s"
    if env.strip():
        inner = f"{env.strip()}\n{inner}"
    return ["/bin/sh", "-c", _LOGIN, "cellucid-desktop", inner]


def new_marker() -> str:
    return f"@cellucid-{secrets.token_hex(6)}"


def _assign(**values: str | int | None) -> str:
    """``name='value'`` lines, every value quoted (None = empty)."""
    return "".join(f"{name}={shlex.quote('' if value is None else str(value))}\n"
                   for name, value in values.items())


def _positional(words: Sequence[str]) -> str:
    return "set --" + "".join(f" {shlex.quote(w)}" for w in words) + "\n"


# -- shared pieces ------------------------------------------------------------------------

_SAY = r'''
say() { printf '%s %s %s\n' "$marker" "$1" "$2"; }
tell_log() { tail -n 40 "$1" 2>/dev/null | while IFS= read -r l; do say log "$l"; done; }
'''
"""How every script answers: ``say KIND TEXT`` lines after the marker, a log's end."""

_HOME_PATH = r'''
case $path in
  "~") path=$HOME ;;
  "~/"*) path=$HOME/${path#??} ;;
  /*) ;;
  *) path=$HOME/$path ;;
esac
'''
"""``$path`` as the user meant it: ``~`` and relative paths are under the remote home."""

_COMMON = _SAY + "umask 077\n" + _HOME_PATH

_FIND_PROGRAM = r'''
found=
for p in $programs; do
  found=$(command -v "$p" 2>/dev/null) || found=
  case $found in /*) break ;; *) found= ;; esac
done
if [ -z "$found" ]; then say missing "$PATH"; exit 0; fi
name=${found##*/}
say program "$found"
'''

_CHECK_DATA = r'''
if [ ! -e "$path" ]; then say no-data "$path"; exit 0; fi
if [ ! -r "$path" ]; then say unreadable "$path"; exit 0; fi
say path "$path"
'''

_MAKE_RUN = r'''
base=$HOME/RUN_BASE
mkdir -p "$base/runs" 2>/dev/null && chmod 700 "$base" "$base/runs" || { say no-run-dir "$base"; exit 0; }
for old in "$base"/runs/*/; do  # stopped servers' folders (no token) after PRUNE_DAYS days
  [ -d "$old" ] && [ ! -e "${old}token" ] || continue
  [ -n "$(find "$old" -maxdepth 0 -mtime +PRUNE_DAYS 2>/dev/null)" ] && rm -rf "$old"
done
run=$(mktemp -d "$base/runs/XXXXXXXX") || { say no-run-dir "$base/runs"; exit 0; }
log=$run/server.log
: >"$log"
say run "$run"
if [ "$name" = cellucid-desktop ]; then printf '%s\n' "$token" >"$run/token"; fi
online() {
  if command -v curl >/dev/null 2>&1; then curl -s -o /dev/null --max-time 4 "$web_ui"; return; fi
  if command -v wget >/dev/null 2>&1; then wget -q -O /dev/null -T 4 -t 1 "$web_ui"; return; fi
  return 1
}
'''.replace("RUN_BASE", RUN_BASE).replace("PRUNE_DAYS", str(PRUNE_DAYS))

# Server arguments, by program: our server on a private socket (or a port the app
# chose) with its token; cellucid on a free port, allowing any local port in Host.
_SERVER_ARGS = r'''
if [ "$name" = cellucid-desktop ]; then
  set -- serve "$path" --no-browser --token-file "$run/token" --allowed-host 127.0.0.1
  if [ -n "$port" ]; then set -- "$@" --port "$port"; else set -- "$@" --socket; fi
else
  set -- serve "$path" --no-browser --port "${port:-0}" --allowed-host 127.0.0.1 \
    --dataset-id "$dataset_id" --dataset-name "$dataset_name"
  online || { set -- "$@" --no-web-ui; say offline ""; }
fi
'''

_START_DETACHED = r'''
if command -v setsid >/dev/null 2>&1; then detach=setsid; else detach=; fi
( PYTHONUNBUFFERED=1 $detach nohup "$found" "$@" </dev/null >"$log" 2>&1 &
  echo $! >"$run/pid" )
pid=$(cat "$run/pid")
say pid "$pid"
n=0
while ! grep -q '^  Viewer URL:' "$log" 2>/dev/null; do
  if ! kill -0 "$pid" 2>/dev/null; then rm -f "$run/token"; say died ""; tell_log "$log"; exit 0; fi
  n=$((n + 1))
  say waiting "$n"
  sleep 0.2 2>/dev/null || sleep 1
done
grep -E '^  (Local URL|Socket|Viewer URL):' "$log" | while IFS= read -r l; do say banner "$l"; done
say ready ""
'''

# Attached (no multiplexing): the session holds the server; when our end closes its
# stdin, the server is stopped unless it is to keep running. One compound command, so
# the shell has read all of it before ``cat`` reads what remains of stdin.
_HOLD = r'''
{ cat >/dev/null; if [ "$keep" != 1 ]; then kill "$pid" 2>/dev/null; rm -f "$run/token"; fi; }
'''


def launch_script(marker: str, *, path: str, programs: Sequence[str], token: str,
                  dataset_id: str, dataset_name: str, port: int | None = None,
                  hold: bool = False, keep: bool = False) -> bytes:
    """Find the server program, make a private run folder (``~/.cellucid-desktop/runs/
    <random>``, 0700, with the server's log, PID and 0600 token file), start the server
    detached (``setsid nohup``) and wait for its banner. ``port`` None: ours on a Unix
    socket, cellucid on a port it picks (``--port 0``). ``hold``: stay attached until
    standard input ends (the fallback without a master), then stop the server unless
    ``keep``. Replies: program, path, run, offline, pid, waiting, banner, ready; or
    missing, no-data, unreadable, no-run-dir, died (+ log)."""
    head = _assign(marker=marker, path=path, programs=" ".join(programs), token=token,
                   dataset_id=dataset_id, dataset_name=dataset_name,
                   port=port, web_ui=WEB_UI_URL, keep=int(keep))
    body = _COMMON + _FIND_PROGRAM + _CHECK_DATA + _MAKE_RUN + _SERVER_ARGS + _START_DETACHED
    return (head + body + (_HOLD if hold else "")).encode()


def job_script(*, program_name: str, path: str, dataset_id: str, dataset_name: str) -> str:
    """The batch job: the server in the foreground on the node (the job ends with it),
    bound to the node's name as Slurm knows it (the login host forwards to that name),
    on a port it picks, allowing any local port in Host. Our server reads its token
    from the 0600 file in the run folder (the job's working directory). Values come
    quoted; ``$CELLUCID_SERVER`` (the program found on the login host) comes through
    the job's environment, which sbatch copies from the submitting shell."""
    node = '"${SLURMD_NODENAME:-$(hostname)}"'
    if program_name == "cellucid-desktop":
        args = (f'serve {shlex.quote(path)} --no-browser --host {node} --port 0 '
                '--token-file "$PWD/token" --allowed-host 127.0.0.1')
    else:
        args = (f'serve {shlex.quote(path)} --no-browser --host {node} --port 0 '
                f'--allowed-host 127.0.0.1 --dataset-id {shlex.quote(dataset_id)} '
                f'--dataset-name {shlex.quote(dataset_name)} $no_web_ui')
    return ("#!/bin/sh\n"
            "export PYTHONUNBUFFERED=1\n"
            "no_web_ui=\n"
            "if [ \"$CELLUCID_OFFLINE\" = 1 ]; then no_web_ui=--no-web-ui; fi\n"
            f'exec "$CELLUCID_SERVER" {args}\n')


_SUBMIT = r'''
export CELLUCID_SERVER="$found"
CELLUCID_OFFLINE=0
if [ "$name" != cellucid-desktop ] && ! online; then CELLUCID_OFFLINE=1; say offline ""; fi
export CELLUCID_OFFLINE
job=$(sbatch --parsable --job-name=cellucid-desktop --output="$log" --chdir="$run" "$@" \
      2>"$run/sbatch.err" <"$run/job.sh") || { rm -f "$run/token"; say sbatch-failed ""; tell_log "$run/sbatch.err"; exit 0; }
job=${job%%;*}
echo "$job" >"$run/job"
say job "$job"
'''

_FOLLOW_JOB = r'''
end_job() { if [ -n "$run" ]; then rm -f "$run/token"; fi; say ended "$1"; tell_log "$log"; exit 0; }
n=0
while :; do
  line=$(squeue --noheader --jobs "$job" --format='%T|%r|%N|%S' 2>/dev/null | head -n 1)
  if [ -z "$line" ]; then end_job ""; fi
  say queue "$line"
  case $line in
    RUNNING*) if grep -q '^  Viewer URL:' "$log" 2>/dev/null; then break; fi ;;
    PENDING*|CONFIGURING*|REQUEUED*|RESIZING*|SUSPENDED*) ;;
    *) end_job "$line" ;;
  esac
  n=$((n + 1))
  if [ "$n" -lt 30 ]; then sleep 0.5 2>/dev/null || sleep 1; else sleep 5; fi
done
grep -E '^  (Local URL|Viewer URL):' "$log" | while IFS= read -r l; do say banner "$l"; done
say ready ""
'''


def slurm_script(marker: str, *, path: str, programs: Sequence[str], token: str,
                 dataset_id: str, dataset_name: str, sbatch_args: Sequence[str]) -> bytes:
    """Like ``launch_script``, but submit the server as a batch job (``sbatch
    --parsable``, the job script written to the run folder from this script's quoted
    text, the user's options as single words) and follow it: ``queue`` replies (state,
    reason, node, expected start) while it waits, ``banner`` and ``ready`` once the
    server on the node answers, ``ended`` (+ log) if the job ended first."""
    head = _assign(marker=marker, path=path, programs=" ".join(programs), token=token,
                   dataset_id=dataset_id, dataset_name=dataset_name, port=None,
                   web_ui=WEB_UI_URL)
    theirs = job_script(program_name="cellucid", path=path, dataset_id=dataset_id,
                        dataset_name=dataset_name)
    ours = job_script(program_name="cellucid-desktop", path=path, dataset_id=dataset_id,
                      dataset_name=dataset_name)
    write_job = ('if [ "$name" = cellucid-desktop ]; then\n'
                 f"  printf '%s' {shlex.quote(ours)} >\"$run/job.sh\"\nelse\n"
                 f"  printf '%s' {shlex.quote(theirs)} >\"$run/job.sh\"\nfi\n")
    body = (_COMMON + _FIND_PROGRAM + _CHECK_DATA + _MAKE_RUN + write_job
            + _positional(sbatch_args) + _SUBMIT + _FOLLOW_JOB)
    return (head + body).encode()


# -- after the start: check, read, stop ----------------------------------------------------

_CHECK_PID = _SAY + r'''
alive=0
if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
  case $(ps -p "$pid" -o args= 2>/dev/null) in *"$run"*|*"$path"*) alive=1 ;; esac
fi
say alive "$alive"
'''


def status_script(marker: str, *, pid: int | None, run: str, path: str, job: str | None,
                  token_file: str | None) -> bytes:
    """Is the server still there (its PID alive and still our command, or its job
    running), its token (read from its 0600 file, to reattach) and its log's end."""
    head = _assign(marker=marker, pid=pid, run=run, path=path, job=job, token_file=token_file)
    body = _CHECK_PID + r'''
if [ -n "$job" ]; then
  say queue "$(squeue --noheader --jobs "$job" --format='%T|%r|%N|%S' 2>/dev/null | head -n 1)"
fi
if [ -n "$token_file" ] && [ -r "$token_file" ]; then say token "$(head -n 1 "$token_file")"; fi
tell_log "$run/server.log"
'''
    return (head + body).encode()


def stop_script(marker: str, *, pid: int | None, run: str, path: str,
                job: str | None) -> bytes:
    """Stop what we started: ``scancel`` the job, or end the server's PID if it is
    still our command (a PID reused by another program is left alone); then remove the
    token file and the socket. The log stays for the user to read."""
    head = _assign(marker=marker, pid=pid, run=run, path=path, job=job)
    body = _CHECK_PID + r'''
if [ -n "$job" ]; then scancel "$job" && say cancelled "$job"; fi
if [ "$alive" = 1 ]; then
  kill "$pid" 2>/dev/null
  i=0
  while kill -0 "$pid" 2>/dev/null && [ $i -lt 25 ]; do sleep 0.2 2>/dev/null || sleep 1; i=$((i + 1)); done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
  say stopped "$pid"
fi
rm -f "$run/token"
'''
    return (head + body).encode()


def list_script(marker: str, *, path: str | None) -> bytes:
    """List one folder (see ``remote_files``): ``path`` (absolute, as ``pwd`` says),
    then one ``entries`` reply followed by NUL-separated records ``type TAB size TAB
    mtime TAB name`` (GNU find; without it, types only), then ``stores`` with the
    names of sub-folders holding a Zarr store's root. Errors: not-found, not-dir,
    denied."""
    head = _assign(marker=marker, path=path if path is not None else "~")
    body = _SAY + _HOME_PATH + r'''
if [ ! -e "$path" ]; then say not-found "$path"; exit 0; fi
if [ ! -d "$path" ]; then say not-dir "$path"; exit 0; fi
cd "$path" 2>/dev/null || { say denied "$path"; exit 0; }
say path "$(pwd)"
say entries ""
if find . -maxdepth 0 -printf '' >/dev/null 2>&1; then
  find . -mindepth 1 -maxdepth 1 -printf '%Y\t%s\t%T@\t%f\0' 2>/dev/null
else
  for f in * .[!.]* ..?*; do
    [ -e "$f" ] || continue
    if [ -d "$f" ]; then t=d; elif [ -f "$f" ]; then t=f; else t=o; fi
    printf '%s\t\t\t%s\0' "$t" "$f"
  done
fi
printf '\n'
say stores ""
for d in */ .[!.]*/ ..?*/; do
  [ -d "$d" ] || continue
  if [ -e "${d}zarr.json" ] || [ -e "${d}.zgroup" ]; then printf '%s\0' "${d%/}"; fi
done
printf '\n'
say done ""
'''
    return (head + body).encode()


# -- replies -------------------------------------------------------------------------------

@dataclass
class Reply:
    """A script's answers: ``values[key]`` is the last value for a key, ``all[key]``
    every one in order (``log``, ``banner``, ``queue``...)."""

    values: dict[str, str] = field(default_factory=dict)
    all: dict[str, list[str]] = field(default_factory=dict)

    def add(self, key: str, value: str) -> None:
        self.values[key] = value
        self.all.setdefault(key, []).append(value)

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.values.get(key, default)

    def has(self, key: str) -> bool:
        return key in self.values


def parse_line(marker: str, line: str) -> tuple[str, str] | None:
    """``(key, value)`` of one reply line, or None for anything else (a profile's
    output, a message of the environment line)."""
    if not line.startswith(marker + " "):
        return None
    key, _, value = line[len(marker) + 1:].partition(" ")
    return key, value


def parse(marker: str, lines: Iterable[str]) -> Reply:
    reply = Reply()
    for line in lines:
        parsed = parse_line(marker, line)
        if parsed is not None:
            reply.add(*parsed)
    return reply


_SOCKET = re.compile(r"^\s*Socket:\s+(\S+)\s*$")
_LOCAL_URL = re.compile(r"^\s*Local URL:\s+https?://(\[[^\]]+\]|[^:/\s]+):(\d+)")


def banner_endpoint(banner: Iterable[str]) -> tuple[str | None, int | None, str | None]:
    """From a server's banner lines: (socket path, port, host) — our ``serve
    --socket`` prints ``Socket:``, ours and cellucid print ``Local URL:`` (the first one
    is the bind address)."""
    socket_path = port = host = None
    for line in banner:
        if socket_path is None and (m := _SOCKET.match(line)):
            socket_path = m.group(1)
        elif port is None and (m := _LOCAL_URL.match(line)):
            host, port = m.group(1), int(m.group(2))
    return socket_path, port, host


def dataset_identity(path: str) -> tuple[str, str]:
    """The ``--dataset-id``/``--dataset-name`` cellucid 0.9.5 requires (unless the file
    names them): from the file name, the id reduced to what its rule allows."""
    name = path.rstrip("/").rsplit("/", 1)[-1] or "dataset"
    for ending in (".zarr.zip", ".h5ad", ".h5mu", ".loom", ".zarr", ".zip", ".h5"):
        if name.lower().endswith(ending) and len(name) > len(ending):
            name = name[: -len(ending)]
            break
    ident = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-_")[:180] or "dataset"
    if not ident[0].isalnum():
        ident = f"d{ident}"
    label = "".join(ch for ch in name if ch.isprintable()).strip() or ident
    return ident, label
