"""Proof that a bookkeeping entry in an output folder is pgan's own (``docs/security.md``).

pgan removes or moves a file it finds in an output folder only when it can prove it wrote it:
manifest entries, commit journals, staging folders and temporary files carry an HMAC-SHA256
tag (Krawczyk, Bellare & Canetti, RFC 2104) under a random key kept in the account's state
folder (``$PGAN_STATE_DIR``, else ``$XDG_STATE_HOME/pgan``, else ``~/.local/state/pgan``).
Whoever edits or plants those files cannot make the tag, so a forged entry is ignored. When the
key cannot be stored the process uses a key of its own: it then proves nothing from earlier
runs, and removes nothing of theirs.

Staging folders and temporary files also carry their process's id and start time, so the next
run in a folder can tell a dead run's debris from a live run's work (a reused pid has another
start time).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import stat
from pathlib import Path

STATE_ENV = "PGAN_STATE_DIR"
KEY_FILE = "bookkeeping.key"
KEY_BYTES = 32
TAG_HEX = 32
_key: bytes | None = None


def state_dir() -> Path:
    """The folder that keeps this account's key."""
    if os.environ.get(STATE_ENV):
        return Path(os.environ[STATE_ENV])
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "pgan"


def _stored_key(path: Path) -> bytes | None:
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid() or st.st_size != KEY_BYTES:
            return None
        with open(path, "rb") as f:
            data = f.read(KEY_BYTES + 1)
        return data if len(data) == KEY_BYTES else None
    except OSError:
        return None


def _make_key(folder: Path) -> bytes | None:
    """Create the key file (mode 0600) without ever replacing one; None when it cannot be stored."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = folder / f".{KEY_FILE}.{secrets.token_hex(8)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(KEY_BYTES))
        try:
            os.link(tmp, folder / KEY_FILE)  # fails if another process made the key first
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    except OSError:
        return None
    return _stored_key(folder / KEY_FILE)


def key() -> bytes:
    """This account's key (created on first use), or a key of this process's own."""
    global _key
    if _key is None:
        folder = state_dir()
        _key = _stored_key(folder / KEY_FILE) or _make_key(folder) or secrets.token_bytes(KEY_BYTES)
    return _key


def tag(*fields: object) -> str:
    """The HMAC of ``fields`` (joined unambiguously), as hex."""
    text = "\x1f".join(str(f).replace("\x1f", "\\x1f") for f in fields)
    return hmac.new(key(), text.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()[:TAG_HEX]


def verify(mac: object, *fields: object) -> bool:
    """Whether ``mac`` is the tag of ``fields``."""
    return isinstance(mac, str) and len(mac) == TAG_HEX and hmac.compare_digest(mac, tag(*fields))


# ---- processes -----------------------------------------------------------------------------
def _start_time(pid: int) -> int | None:
    """A process's start time in clock ticks since boot (Linux ``/proc``), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def run_token() -> str:
    """This process: ``PID.START`` (START 0 where ``/proc`` is not there)."""
    return f"{os.getpid()}.{_start_time(os.getpid()) or 0}"


def alive(token: str) -> bool:
    """Whether the process a :func:`run_token` names is still running."""
    pid_s, _, start_s = token.partition(".")
    pid, start = int(pid_s), int(start_s)
    now = _start_time(pid)
    if now is not None:
        return start == 0 or now == start
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


# ---- names that carry their proof ----------------------------------------------------------
_OWNED = re.compile(r"\.pgan-(?P<kind>stage|tmp)-(?P<run>\d+\.\d+)-(?P<rand>[0-9a-f]{8})-(?P<mac>[0-9a-f]{32})")


def owned_name(kind: str) -> str:
    """A fresh name part ``.pgan-KIND-PID.START-RAND-TAG`` for a staging folder or temporary file."""
    run, rand = run_token(), secrets.token_hex(4)
    return f".pgan-{kind}-{run}-{rand}-{tag(kind, run, rand)}"


def owner_of(name: str, kind: str) -> str | None:
    """The run token in a name :func:`owned_name` made for ``kind``, or None for any other name."""
    m = _OWNED.search(name)
    if m is None or m.group("kind") != kind or not verify(m.group("mac"), kind, m.group("run"), m.group("rand")):
        return None
    return m.group("run")


def inside_without_links(folder: Path, rel: str) -> bool:
    """Whether every folder between ``folder`` and ``folder/rel`` is a real folder (no symlink)."""
    p = folder
    for part in Path(rel).parts[:-1]:
        p = p / part
        try:
            if not stat.S_ISDIR(os.lstat(p).st_mode):
                return False
        except FileNotFoundError:
            return True  # not there yet: made by pgan as a real folder
        except OSError:
            return False
    return True


# ---- the commit journal --------------------------------------------------------------------
def journal_record(stage: str, set_name: str, files: list[str]) -> dict:
    """The journal of a commit: the staging folder, the set, the files to move, and their tag."""
    return {"stage": stage, "set": set_name, "files": files,
            "tag": tag("journal", stage, set_name, json.dumps(files))}


def read_journal(path: str | os.PathLike) -> dict | None:
    """The journal at ``path`` when pgan wrote it (its tag verifies and its staging folder is a real
    folder pgan made beside it), else None: a planted or edited journal is never acted on."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode) or os.path.getsize(path) > (64 << 20):
            return None
        with open(path, encoding="utf-8") as f:
            j = json.load(f)
        stage, set_name, files = j["stage"], j["set"], j["files"]
        ok = (isinstance(stage, str) and isinstance(set_name, str) and isinstance(files, list)
              and all(isinstance(r, str) for r in files) and verify(j.get("tag"), "journal", stage, set_name,
                                                                    json.dumps(files)))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None
    if not ok or "/" in stage or owner_of(stage, "stage") is None or not stage.startswith(".pgan-stage-"):
        return None
    try:
        if not stat.S_ISDIR(os.lstat(Path(path).parent / stage).st_mode):
            return None
    except OSError:
        return None
    return j
