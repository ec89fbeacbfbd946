"""Files read whole, bounded: only regular files, and none over a stated size.

Results and catalog files come from other machines, and a folder can hold anything: a FIFO named
`x.jsonl` blocks a plain read forever, a symlink to /dev/zero never ends, a symlink loop raises.
So a file is checked before it is opened (`check`: it must resolve to a regular file no larger than
the limit), opened without blocking, checked again on the open descriptor (it may have been swapped
in between), and read to at most the limit. Anything else is FileRefused, one line naming the file.

The limit is DEFAULT_LIMIT_MIB (256 MiB) per file, or the MiB in the environment variable
TOKENBENCH_MAX_FILE_MIB. A long run's records file is a few MiB (a record with 10,000 samples is
about 200 KiB), so the default leaves room for the longest soak while a stray multi-gigabyte file
costs a warning instead of the machine's memory. FileRefused is an OSError, so code that already
says `except OSError as e: ... e.strerror` reports it as it reports a missing file.
"""

from __future__ import annotations

import errno
import math
import os
import stat
from pathlib import Path

DEFAULT_LIMIT_MIB = 256
LIMIT_ENV = "TOKENBENCH_MAX_FILE_MIB"
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))  # fmt: skip


class FileRefused(OSError):
    """A file not read: not a regular file, a symlink loop or dangling, or over the size limit.

    str() is the one line `PATH: not read as WHAT: REASON`; `strerror` is the reason alone.
    """

    def __init__(self, path: str | Path, what: str, reason: str):
        super().__init__(reason)
        self.filename = str(path)
        self.strerror = reason
        self.what = what

    def __str__(self) -> str:
        return f"{self.filename}: not read as {self.what}: {self.strerror}"


def limit_bytes() -> int:
    """The size limit per file: TOKENBENCH_MAX_FILE_MIB where set, else DEFAULT_LIMIT_MIB; ValueError when malformed."""
    raw = os.environ.get(LIMIT_ENV)
    if raw is None or not raw.strip():
        return DEFAULT_LIMIT_MIB * 2**20
    try:
        mib = float(raw)
    except ValueError:
        mib = math.nan
    if not (math.isfinite(mib) and mib > 0):
        raise ValueError(f"{LIMIT_ENV}={raw!r}: the size limit per file read must be a positive number of MiB")
    return max(1, int(mib * 2**20))


def _size(n: int) -> str:
    return f"{n} bytes" if n < 2**20 else f"{n / 2**20:.1f} MiB"


def _refusal(st: os.stat_result, limit: int) -> str | None:
    """Why a file of this status is not read (None: it is a regular file within the limit)."""
    if not stat.S_ISREG(st.st_mode):
        kind = next((name for test, name in _KINDS if test(st.st_mode)), "a special file")
        return f"{kind}, not a regular file"
    if st.st_size > limit:
        return f"{_size(st.st_size)}, over the limit of {_size(limit)} (set {LIMIT_ENV} to read larger files)"
    return None


def check(path: str | Path, limit: int, what: str) -> None:
    """Refuse `path` (FileRefused) unless it resolves to a regular file of at most `limit` bytes.

    Opens nothing (a device's open can have effects). Other errors of stat (permissions, a missing
    file that is no symlink) are raised as the OSError they are.
    """
    try:
        st = os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise FileRefused(path, what, "a symlink loop") from None
        if e.errno == errno.ENOENT and os.path.islink(path):
            raise FileRefused(path, what, "a symlink to nothing") from None
        raise
    why = _refusal(st, limit)
    if why:
        raise FileRefused(path, what, why)


def read_bytes_bounded(path: str | Path, limit: int, what: str) -> bytes:
    """The bytes of `path`, a regular file of at most `limit` bytes, else FileRefused (one line)."""
    check(path, limit, what)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as f:
        why = _refusal(os.fstat(fd), limit)  # swapped for a FIFO or a device since the check?
        if why:
            raise FileRefused(path, what, why)
        data = f.read(limit + 1)  # a file growing while it is read stops here too
    if len(data) > limit:
        grew = f"more than {_size(limit)}: it grew while read (set {LIMIT_ENV} to read larger files)"
        raise FileRefused(path, what, grew)
    return data


def read_text_bounded(path: str | Path, limit: int, what: str) -> str:
    """The UTF-8 text of `path` read through read_bytes_bounded; text that is not UTF-8 is FileRefused too."""
    data = read_bytes_bounded(path, limit, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FileRefused(path, what, f"not UTF-8 text (byte {e.start})") from None
