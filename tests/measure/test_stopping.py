"""The signal watcher: the main thread answers a signal, or the watcher ends the run once, or a second
signal ends the process at once. `wake` writes a signal's number where the C-level handler would, as
when the main thread is inside a long call and its Python handler cannot run; `leave` is the test's."""

from __future__ import annotations

import signal
import threading

import pytest

from bench.measure.stopping import HeldSignals, Terminated, Watcher, exit_code, reason

WAIT_S = 30.0  # an upper bound for a thread to act; a test fails only if it never does


class Calls:
    """What the watcher did, in order: finish(signum), say(), leave(code)."""

    def __init__(self, block_say: bool = False) -> None:
        self.log: list[object] = []
        self.left = threading.Event()
        self.saying = threading.Event()
        self.go_on = threading.Event()
        if not block_say:
            self.go_on.set()

    def finish(self, signum: int) -> int:
        self.log.append(("finish", signum))
        return exit_code(signum)

    def say(self) -> None:
        self.saying.set()
        assert self.go_on.wait(WAIT_S)
        self.log.append("say")

    def leave(self, code: int) -> None:
        self.log.append(("leave", code))
        self.left.set()


@pytest.fixture
def calls():
    return Calls()


@pytest.fixture
def clean_signals():
    """Every test leaves the handlers and the wakeup fd as it found them."""
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    fd = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(fd)
    yield before
    assert {sig: signal.getsignal(sig) for sig in before} == before
    assert signal.set_wakeup_fd(fd) == fd


def watcher(calls: Calls, grace_s: float = 0.05, settle_s: float = WAIT_S) -> Watcher:
    w = Watcher(calls.finish, calls.say, grace_s=grace_s, settle_s=settle_s, leave=calls.leave)
    assert w.start()
    return w


@pytest.mark.parametrize(("sig", "raised"), [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, Terminated)])
def test_a_signal_the_main_thread_answers_is_left_to_it(calls, clean_signals, sig, raised):
    w = watcher(calls)
    try:
        with pytest.raises(raised):
            signal.raise_signal(sig)  # the C handler writes the wakeup fd; the Python handler raises here
        assert w.acked.is_set()
        assert w.judged.wait(WAIT_S)  # the grace period passed: the watcher looked and left it
    finally:
        w.close()
    assert calls.log == []


def test_a_signal_the_main_thread_does_not_answer_ends_the_run_once(calls, clean_signals):
    w = watcher(calls)
    try:
        w.wake(signal.SIGINT)  # the main thread is inside a call: its handler does not run
        assert calls.left.wait(WAIT_S)
        assert calls.log == [("finish", signal.SIGINT), "say", ("leave", 130)]
        with pytest.raises(SystemExit):  # the main thread, back from its call, must not finish the run too
            w.claim()
    finally:
        w.close()
    assert calls.log == [("finish", signal.SIGINT), "say", ("leave", 130), ("leave", 130)]


def test_sigterm_ends_the_run_with_143(calls, clean_signals):
    w = watcher(calls)
    try:
        w.wake(signal.SIGTERM)
        assert calls.left.wait(WAIT_S)
    finally:
        w.close()
    assert calls.log == [("finish", signal.SIGTERM), "say", ("leave", 143)]


def test_once_the_main_thread_finishes_the_run_the_watcher_does_not(calls, clean_signals):
    w = watcher(calls)
    try:
        w.claim()  # the main thread has begun to finish (it will mark the header itself)
        w.wake(signal.SIGINT)
        assert w.judged.wait(WAIT_S)
    finally:
        w.close()
    assert calls.log == []


def test_a_second_signal_while_the_rows_are_printed_ends_the_process_at_once(clean_signals):
    calls = Calls(block_say=True)
    w = watcher(calls)
    try:
        w.wake(signal.SIGINT)
        assert calls.saying.wait(WAIT_S)  # the header is marked, the rows are being printed
        w.wake(signal.SIGINT)
        assert calls.left.wait(WAIT_S)
        assert calls.log == [("finish", signal.SIGINT), ("leave", 130)]  # before the rows are done
    finally:
        calls.go_on.set()
        w.close()


def test_a_second_signal_before_the_grace_period_ends_marks_the_run_and_leaves(calls, clean_signals):
    w = watcher(calls, grace_s=600)
    try:
        w.wake(signal.SIGTERM)
        w.wake(signal.SIGINT)  # the first signal's code stands
        assert calls.left.wait(WAIT_S)
    finally:
        w.close()
    assert calls.log == [("finish", signal.SIGTERM), ("leave", 143)]  # nothing printed


def test_a_second_signal_while_the_main_thread_finishes_waits_for_the_header(calls, clean_signals):
    w = watcher(calls)
    try:
        w.claim()
        w.wake(signal.SIGINT)
        w.wake(signal.SIGINT)
        assert not calls.left.wait(0.2)  # the header is not marked yet (the watcher waits up to WAIT_S)
        w.marked(130)
        assert calls.left.wait(WAIT_S)
    finally:
        w.close()
    assert calls.log == [("leave", 130)]


def test_closing_ends_the_wait_of_a_second_signal_without_leaving(calls, clean_signals):
    w = watcher(calls)
    w.claim()
    w.wake(signal.SIGINT)
    w.wake(signal.SIGINT)
    w.close()  # a run that completed: the held signal is answered after the header, by the main thread
    assert calls.log == []


def test_after_the_header_is_marked_the_main_threads_handler_leaves_at_once(calls, clean_signals):
    w = watcher(calls)
    try:
        w.claim()
        w.marked(143)
        signal.raise_signal(signal.SIGINT)  # no KeyboardInterrupt: the process ends
    finally:
        w.close()
    assert calls.log[0] == ("leave", 143)


def test_a_signal_noted_while_the_main_thread_finishes_raises_nothing(calls, clean_signals):
    w = watcher(calls)
    try:
        w.claim()
        signal.raise_signal(signal.SIGINT)  # the run is already ending: no second interrupt
    finally:
        w.close()
    assert calls.log == []


def test_close_hands_back_the_handlers_it_cannot_restore(calls, clean_signals):
    w = watcher(calls)
    with HeldSignals().holding() as held:  # another handler over ours, as while a header is written
        later = w.close()
        held.restore_later(later)
    assert later == clean_signals and w.close() == {}


def test_outside_the_main_thread_nothing_is_installed(calls, clean_signals):
    started: list[bool] = []
    w = Watcher(calls.finish, calls.say, leave=calls.leave)
    t = threading.Thread(target=lambda: started.append(w.start()))
    t.start()
    t.join(WAIT_S)
    assert started == [False] and not w.active and w.close() == {}
    w.claim()  # the plain path: the main thread finishes
    assert calls.log == []


def test_an_ignored_signal_stays_ignored(calls, clean_signals):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        w = watcher(calls)
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN and signal.getsignal(signal.SIGINT) == w._handle
        w.close()
    finally:
        signal.signal(signal.SIGTERM, clean_signals[signal.SIGTERM])


def test_exit_codes_and_reasons():
    assert exit_code(signal.SIGINT) == 130 and exit_code(signal.SIGTERM) == 143
    assert reason(signal.SIGINT) == "interrupted by the user (SIGINT)" and "SIGTERM" in reason(signal.SIGTERM)
