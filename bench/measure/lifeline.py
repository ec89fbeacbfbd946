"""No process of a run outlives the process that started it (Linux).

`tokenbench run --nproc N` starts torchrun, which starts the ranks. A launcher or a torchrun killed
with SIGKILL runs no handler, so its children would finish the run on their own; instead each
child asks the kernel for SIGTERM when its parent dies (prctl PR_SET_PDEATHSIG), and a rank's
SIGTERM ends its run as `interrupted` with its records kept. Imports no torch: a rank calls it first.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # linux/prctl.h
LAUNCH_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")  # set by torchrun in every process it starts


def under_torchrun() -> bool:
    return all(k in os.environ for k in LAUNCH_ENV)


def die_with_parent(signum: int = signal.SIGTERM) -> None:
    """Have the kernel send `signum` to this process when its parent dies; at once if it already has."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
    if os.getppid() == 1:  # orphaned before the request took hold: adopted by init
        os.kill(os.getpid(), signum)
