"""How a run stops on Ctrl-C or SIGTERM while its entries are measured in the main thread.

Entries are measured in the main thread: a second thread would start a second OpenMP team that
competes with the main thread's for the cores (torch on the CPU up to 2x slower), and a GPU's
current device, CUDA graphs and compiled code belong to the thread that set them up.

Python runs a signal's handler in the main thread between bytecodes only, so while that thread is
inside one long C call (a GEMM of minutes) its handler waits for the call. The C-level handler runs
at once, though, and writes the signal's number to the wakeup fd (`signal.set_wakeup_fd`), where a
`Watcher` thread reads it:

- the main thread answers within GRACE_S (its handler acknowledges, then raises KeyboardInterrupt
  or `Terminated`): the run ends there, as any interrupted run;
- it does not (it is still inside the call): the watcher ends the run itself. `finish` stops the
  runner (no record is written after it) and marks the header interrupted, `say` prints what was
  kept, then the process ends (130 or 143) without waiting for the call;
- a second signal ends the process at once, as soon as the header is marked.

Exactly one side finishes a run: the first to claim it, the main thread or the watcher.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any, NoReturn

GRACE_S = 1.0  # the main thread answers a signal within this when it runs Python; later: it is inside a call
SETTLE_S = 2.0  # after a second signal, the longest wait for the header to be marked before the process ends
SIGNALS = (signal.SIGINT, signal.SIGTERM)
MAIN, WATCHER = "main thread", "watcher"
_CLOSE = 0  # no signal has number 0: the byte that ends the watcher's loop


class Terminated(BaseException):
    """SIGTERM: the run ends as `interrupted`, every finished record kept."""


def terminated(signum: int, _frame: object) -> NoReturn:
    """SIGTERM's handler while a run measures: raise `Terminated` in the main thread."""
    raise Terminated(reason(signum))


def exit_code(signum: int) -> int:
    """The shell's code for a process ended by `signum`: 130 after SIGINT, 143 after SIGTERM."""
    return 128 + signum


def reason(signum: int) -> str:
    """Why the run was interrupted, for the header's `error`."""
    if signum == signal.SIGTERM:
        return f"terminated by signal {signum} (SIGTERM): a scheduler, the launcher, or a rank that died"
    return "interrupted by the user (SIGINT)"


def exit_now(code: int) -> NoReturn:
    """Flush what was printed and end the process at once, leaving any call still running."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def on_main_thread() -> bool:
    """Signal handlers and the wakeup fd can be set in the main thread only."""
    return threading.current_thread() is threading.main_thread()


class Watcher:
    """Watches SIGINT and SIGTERM from a thread while the main thread measures; see the module's doc.

    `finish(signum)` marks the run interrupted and returns its exit code; `say()` prints what was
    kept; `leave(code)` ends the process (tests pass their own).
    """

    def __init__(self, finish: Callable[[int], int], say: Callable[[], None] = lambda: None,
                 grace_s: float = GRACE_S, settle_s: float = SETTLE_S,
                 leave: Callable[[int], None] = exit_now) -> None:  # fmt: skip
        self.finish, self.say, self.leave = finish, say, leave
        self.grace_s, self.settle_s = grace_s, settle_s
        self.active = False
        self.acked = threading.Event()  # the main thread's handler ran
        self.judged = threading.Event()  # the grace period of the first signal is over, whatever was decided
        self._lock = threading.Lock()
        self._owner: str | None = None  # who finishes the run: MAIN or WATCHER
        self._code: int | None = None  # set once the header is marked
        self._settled = threading.Event()  # the header is marked, or watching ended
        self._ended = threading.Event()  # the watcher's own finish is done (the process is gone, but in tests)
        self._first: int | None = None
        self._due: float | None = None  # when the first signal's grace period ends
        self._before: dict[int, Any] = {}
        self._old_fd = -1
        self._r: socket.socket | None = None
        self._w: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        """Handle SIGINT and SIGTERM here and start the thread. False (nothing changed) outside the
        main thread, where only a plain interrupt is possible. A signal ignored before stays ignored."""
        if self.active or not on_main_thread():
            return self.active
        self._r, self._w = socket.socketpair()
        self._w.setblocking(False)  # the C-level handler must never block
        self._old_fd = signal.set_wakeup_fd(self._w.fileno(), warn_on_full_buffer=False)
        for sig in SIGNALS:
            if signal.getsignal(sig) is not signal.SIG_IGN:
                self._before[sig] = signal.signal(sig, self._handle)
        self._thread = threading.Thread(target=self._loop, name="tokenbench-signals", daemon=True)
        self._thread.start()
        self.active = True
        return True

    def close(self) -> dict[int, Any]:
        """Stop watching: the wakeup fd as before, the thread ended, and the handlers from before put
        back where ours are still set. Returns the ones that could not be put back (another handler
        was set over ours since), for whoever set it to restore."""
        if not self.active:
            return {}
        self.active = False
        signal.set_wakeup_fd(self._old_fd)
        later = {}
        for sig, handler in self._before.items():
            if signal.getsignal(sig) == self._handle:
                signal.signal(sig, handler)
            else:
                later[sig] = handler
        self._settled.set()
        assert self._w is not None and self._r is not None and self._thread is not None
        with contextlib.suppress(OSError):
            self._w.send(bytes([_CLOSE]))
        self._thread.join(timeout=self.settle_s + 1)
        self._w.close()
        self._r.close()
        return later

    def claim(self) -> None:
        """The main thread finishes the run. When the watcher finishes it already, wait for the end."""
        with self._lock:
            self._owner = self._owner or MAIN
            mine = self._owner == MAIN
        if not mine:
            self.park()

    def marked(self, code: int) -> None:
        """The header is marked: from now on any signal ends the process with `code` at once."""
        with self._lock:
            self._code = self._code if self._code is not None else code
        self._settled.set()

    def park(self) -> NoReturn:
        """The main thread waits while the watcher finishes the run and ends the process."""
        while True:
            try:
                if self._ended.wait(0.5):
                    break
            except (KeyboardInterrupt, Terminated):  # a further signal: the watcher answers it
                continue
        code = self._code if self._code is not None else exit_code(self._first or signal.SIGINT)
        self.leave(code)
        raise SystemExit(code)  # only where `leave` returns (tests)

    def wake(self, signum: int) -> None:
        """What the C-level handler does: the signal's number on the wakeup fd (tests call it)."""
        assert self._w is not None
        self._w.send(bytes([signum]))

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        """The main thread's handler: acknowledge, then interrupt the run as a plain handler would."""
        with self._lock:
            owner, code = self._owner, self._code
        if owner == WATCHER:  # the watcher is ending the run: nothing more happens here
            self.park()
        if code is not None:
            self.leave(code)
            return
        if owner == MAIN:  # already finishing; a second signal ends the process once the header is marked
            return
        self.acked.set()
        if signum == signal.SIGTERM:
            terminated(signum, frame)
        raise KeyboardInterrupt

    def _take(self) -> bool:
        """True when the watcher now finishes the run (nobody did yet)."""
        with self._lock:
            if self._owner is not None:
                return False
            self._owner = WATCHER
            return True

    def _loop(self) -> None:
        assert self._r is not None
        while True:
            wait = None if self._due is None else max(0.0, self._due - time.monotonic())
            try:
                data = self._r.recv(64) if select.select([self._r], [], [], wait)[0] else b""
            except (OSError, ValueError):
                return
            for signum in data:
                if signum == _CLOSE:
                    return
                if signum in SIGNALS:
                    self._signalled(signum)
            if self._due is not None and time.monotonic() >= self._due:
                self._due = None
                self._judge()

    def _signalled(self, signum: int) -> None:
        if self._first is None:
            self._first, self._due = signum, time.monotonic() + self.grace_s
            return
        self._due = None  # a second signal: no more grace
        if self._take():  # nobody finishes the run yet (the main thread is inside a call): mark it, print nothing
            self.marked(self._safe_finish())
        self._settled.wait(self.settle_s)
        with self._lock:
            code = self._code
        if code is not None or not self._settled.is_set():  # marked, or the header is stuck: leave all the same
            self.leave(code if code is not None else exit_code(self._first))

    def _judge(self) -> None:
        """The first signal's grace period is over: end the run here if the main thread did not answer."""
        if not self.acked.is_set() and self._take():
            threading.Thread(target=self._abandon, name="tokenbench-stop", daemon=True).start()
        self.judged.set()

    def _abandon(self) -> None:
        code = exit_code(self._first or signal.SIGINT)
        try:
            code = self._safe_finish()
            self.marked(code)
            self.say()
        finally:
            self.marked(code)
            self.leave(code)
            self._ended.set()

    def _safe_finish(self) -> int:
        """`finish` for the first signal; its exit code even when marking fails (the process ends anyway)."""
        assert self._first is not None
        try:
            return self.finish(self._first)
        except Exception as e:  # the header is left as it was; say so where a person sees it
            print(f"tokenbench: could not mark the run interrupted: {type(e).__name__}: {e}", file=sys.stderr)
            return exit_code(self._first)


def exit_at_once(code: int) -> dict[int, Any]:
    """From now on SIGINT and SIGTERM end the process at once with `code` (after an interrupt whose
    records are safe, while the rows are printed). Returns the handlers before, to restore."""

    def leave_now(_signum: int, _frame: object) -> None:
        os._exit(code)

    if not on_main_thread():
        return {}
    return {sig: signal.signal(sig, leave_now) for sig in SIGNALS}


class HeldSignals:
    """SIGINT and SIGTERM noted, not raised, while the end of a run is written.

    A signal in the last milliseconds of a run must not leave the header saying `running`, a
    temporary header file behind, or a traceback: the end is written, then the signal is answered.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._before: dict[int, Any] = {}

    def _note(self, signum: int, _frame: object) -> None:
        self.signum = self.signum or signum

    def hold(self) -> None:
        if on_main_thread():
            for sig in SIGNALS:
                self._before[sig] = signal.signal(sig, self._note)

    def restore_later(self, handlers: dict[int, Any]) -> None:
        """Put these handlers back on `release` (the ones from before a watcher that ours replaced)."""
        self._before.update(handlers)

    def release(self) -> None:
        for sig, handler in self._before.items():
            signal.signal(sig, handler)
        self._before = {}

    @contextlib.contextmanager
    def holding(self) -> Iterator[HeldSignals]:
        self.hold()
        try:
            yield self
        finally:
            self.release()
