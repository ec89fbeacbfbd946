"""Runs across processes: one per GPU (or CPU process), on one node or many, through torchrun.

`tokenbench run --nproc N` starts torchrun on this node; torchrun on each node (Slurm, Kubernetes)
starts `tokenbench run` in every process. Each process finds itself through torchrun's
environment (RANK, WORLD_SIZE, LOCAL_RANK, GROUP_RANK), takes GPU LOCAL_RANK, and joins the
default process group (NCCL on GPUs, gloo on the CPU) that the workloads' collectives use.

The harness talks over a second, gloo group on the host, so its own messages never queue behind
a workload's GPU collectives: it agrees on timing counts, lines up the start of every entry, and
gathers each entry's records to rank 0, which alone writes the results files. A record is on
disk as soon as every rank has finished that entry.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import psutil
import torch
import torch.distributed as dist

from bench.measure.lifeline import die_with_parent, under_torchrun
from bench.results.writer import RunWriter
from bench.text import plural

# Set by `tokenbench run --nproc`: rank 0 leaves its exit code here and exits 0, so that torchrun
# does not print a traceback for a run that merely found a failed record; the launcher exits with it.
EXIT_CODE_FILE_ENV = "TOKENBENCH_EXIT_CODE_FILE"


class DistError(RuntimeError):
    """A launch that cannot work; the message is one line."""


def launched() -> bool:
    """True inside a process that torchrun (or an equivalent launcher) started."""
    return under_torchrun()


def _env_int(name: str, default: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None:
        if default is None:
            raise DistError(f"{name} is not set: start tokenbench through torchrun or tokenbench run --nproc")
        return default
    try:
        return int(raw)
    except ValueError:
        raise DistError(f"{name}={raw!r} is not an integer") from None


@dataclass
class Dist:
    """This process's place in the job and the host-side group the harness talks over."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    node_rank: int
    backend: str
    ctrl: Any = field(default=None, repr=False)  # the gloo group for the harness's own messages

    def fields(self) -> dict[str, Any]:
        """What every record of this process says about where it ran."""
        return {"rank": self.rank, "local_rank": self.local_rank, "node_rank": self.node_rank,
                "world_size": self.world_size}  # fmt: skip

    def agree_max(self, n: int) -> int:
        """The largest of every rank's `n` (used for 'how many calls next; 0: stop')."""
        t = torch.tensor([n], dtype=torch.int64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX, group=self.ctrl)
        return int(t.item())

    def all_ok(self, ok: bool) -> bool:
        """True when every rank says True."""
        t = torch.tensor([0 if ok else 1], dtype=torch.int64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX, group=self.ctrl)
        return int(t.item()) == 0

    def barrier(self) -> None:
        dist.barrier(group=self.ctrl)

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's `obj`, on every rank."""
        box = [obj if self.rank == 0 else None]
        dist.broadcast_object_list(box, src=0, group=self.ctrl)
        return box[0]

    def gather(self, obj: Any) -> list[Any] | None:
        """Every rank's `obj` in rank order on rank 0; None on the others."""
        out: list[Any] | None = [None] * self.world_size if self.rank == 0 else None
        dist.gather_object(obj, out, dst=0, group=self.ctrl)
        return out

    def finish(self) -> None:
        """Leave the job together: every rank waits for the others, then tears its groups down, so
        no rank's exit breaks a connection another rank still holds."""
        self.barrier()
        if dist.is_initialized():
            dist.destroy_process_group()


CTRL_TIMEOUT_S = 4 * 3600.0  # ranks may finish an entry of their own minutes apart (compiling, say)


def init(device_kind: str, timeout_s: float) -> Dist:
    """Join the job that torchrun started: the default group for workloads, gloo for the harness.

    `timeout_s` bounds a workload's collective (a rank that stopped taking part); the harness's own
    group waits longer, since ranks reach the end of an entry they run alone at their own pace.
    """
    die_with_parent()  # torchrun killed (or the launcher above it): this rank stops too
    rank, world = _env_int("RANK"), _env_int("WORLD_SIZE")
    local_rank = _env_int("LOCAL_RANK")
    local_world = _env_int("LOCAL_WORLD_SIZE", world)
    node_rank = _env_int("GROUP_RANK", rank // max(local_world, 1))
    backend = "nccl" if device_kind == "cuda" else "gloo"
    timeout = timedelta(seconds=timeout_s)
    kwargs: dict[str, Any] = {"backend": backend, "timeout": timeout}
    if device_kind == "cuda":
        kwargs["device_id"] = torch.device("cuda", local_rank)  # binds NCCL to this process's GPU
    dist.init_process_group(**kwargs)
    # Always a group of its own, also on the CPU: a harness message must never pair with a
    # workload's collective on a rank that left the workload early.
    ctrl = dist.new_group(backend="gloo", timeout=timedelta(seconds=max(CTRL_TIMEOUT_S, timeout_s)))
    return Dist(rank, world, local_rank, local_world, node_rank, backend, ctrl)


class Refused(ValueError):
    """A --nproc / --device combination that cannot run, or a torchrun job that cannot be joined (one line)."""


def join_or_launch(nproc: int | None, device: str | None, timeout_s: float, command: str = "run") -> Dist | int | None:
    """Inside torchrun: join the job (its Dist). Otherwise, with more than one process wanted: start
    torchrun and return its exit code. None: this process measures alone. Refused says why not."""
    from bench.device.base import cuda_unusable_reason
    from bench.measure.limits import nproc_refusal

    if launched():
        if device and device.startswith("cuda:"):
            raise Refused(f"--device {device}: under torchrun each process takes GPU LOCAL_RANK; give --device cuda "
                          "or cpu")  # fmt: skip
        kind = "cpu" if (device or "").lower() == "cpu" or cuda_unusable_reason() else "cuda"
        if kind == "cpu" and "OMP_NUM_THREADS" not in os.environ:  # the user's setting stands
            torch.set_num_threads(cpu_threads(int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))
        try:
            return init(kind, timeout_s)
        except (DistError, RuntimeError, ValueError) as e:
            raise Refused(f"cannot join the torchrun job: {e}") from None
    wanted = nproc
    if wanted is None:  # every visible GPU, unless one device was asked for
        wanted = torch.cuda.device_count() if device is None and cuda_unusable_reason() is None else 1
    if wanted <= 1:
        return None
    if (device or "").startswith("cuda:"):
        raise Refused(f"--nproc {wanted} runs one process per GPU; --device {device} names one GPU")
    unusable = cuda_unusable_reason()
    if device is None and unusable:  # never a silent fall-back to N processes on the CPU
        raise Refused(f"--nproc {wanted} starts one process per GPU, and no GPU is usable here ({unusable}); "
                      f"give --device cpu for {wanted} CPU processes")  # fmt: skip
    if (device or "cuda") != "cpu" and unusable is None and wanted > torch.cuda.device_count():
        raise Refused(f"--nproc {wanted}: torch sees {plural(torch.cuda.device_count(), 'GPU')}")
    if sys.argv[1:2] != [command]:  # called from code, not as `tokenbench run ...`
        raise Refused(f"--nproc above 1 needs the tokenbench {command} command line (it restarts itself under "
                      "torchrun)")  # fmt: skip
    kind = "cpu" if (device or "").lower() == "cpu" or cuda_unusable_reason() else "cuda"
    why = nproc_refusal(wanted, kind)
    if why:
        raise Refused(why)
    return launch(wanted, without_option(sys.argv[2:], "--nproc"), kind, command)


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity: a container's or a Slurm step's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def cpu_threads(local_world_size: int) -> int:
    """Intra-op threads per process so that the processes of one node share its cores, not fight."""
    return max(1, usable_cpus() // max(local_world_size, 1))


def torchrun_argv(nproc: int, args: list[str], command: str = "run") -> list[str]:
    """The command that runs `tokenbench COMMAND ARGS` (run or accept) in `nproc` processes on this node."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
            "-m", "bench", command, *args]  # fmt: skip


def without_option(argv: list[str], name: str) -> list[str]:
    """argv with `--name VALUE` and `--name=VALUE` removed."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == name:
            skip = True
        elif not arg.startswith(name + "="):
            out.append(arg)
    return out


def launch(nproc: int, run_args: list[str], device_kind: str, command: str = "run") -> int:
    """Run `tokenbench COMMAND ARGS` in `nproc` processes under torchrun; the run's exit code.

    That is rank 0's: 0, or 1 when a record failed or a card's health failed. Where torchrun
    itself fails (a rank crashed, a rank timed out), its own non-zero code.
    """
    env = dict(os.environ)
    if device_kind == "cpu":
        env.setdefault("OMP_NUM_THREADS", str(cpu_threads(nproc)))
    with tempfile.TemporaryDirectory(prefix="tokenbench-") as tmp:
        code_file = Path(tmp) / "exit-code"
        env[EXIT_CODE_FILE_ENV] = str(code_file)
        # torchrun gets a process group of its own. A stop signal this launcher receives (Ctrl-C, a
        # CI cancel, a scheduler's SIGTERM) goes to the ranks: they end their run as interrupted and
        # exit 0 to torchrun, which then ends without a report of its own. A second one goes to
        # torchrun's whole group.
        proc = subprocess.Popen(torchrun_argv(nproc, run_args, command), env=env, start_new_session=True,
                                preexec_fn=die_with_parent)  # fmt: skip
        got: list[int] = []

        def forward(signum: int, _frame: object) -> None:
            got.append(signum)
            ranks = _children(proc.pid) if len(got) == 1 else []
            for rank in ranks:
                with contextlib.suppress(psutil.Error):
                    rank.send_signal(signum)
            if not ranks:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signum)

        before = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        try:
            rc = proc.wait()
        finally:
            for sig, handler in before.items():
                signal.signal(sig, handler)
        if got:
            return 128 + got[0]
        if rc == 0 and code_file.exists():
            return int(code_file.read_text() or 0)
        return rc


def _children(pid: int) -> list[psutil.Process]:
    """The processes `pid` started (torchrun's ranks); none where it is gone."""
    try:
        return psutil.Process(pid).children()
    except psutil.Error:
        return []


def under_launcher() -> bool:
    """True in a rank that `tokenbench run --nproc` started: its exit code goes through the launcher."""
    return EXIT_CODE_FILE_ENV in os.environ


def leave(code: int) -> int:
    """Rank 0's exit code under `tokenbench run --nproc`: written for the launcher, and 0 to torchrun."""
    path = os.environ.get(EXIT_CODE_FILE_ENV)
    if path is None:
        return code
    Path(path).write_text(str(code))
    return 0


class GatheringWriter:
    """The Runner's writer on every rank: each entry's records go to rank 0, which writes them.

    Rank 0 adds what only the whole job knows: `job_tokens_per_s`, the sum of every rank's
    tokens/s for the entry (data-parallel throughput is summed over ranks, never averaged).
    """

    def __init__(self, d: Dist, run_id: str, writer: RunWriter | None):
        self.dist = d
        self.run_id = run_id
        self.writer = writer  # rank 0's RunWriter; None elsewhere
        self.all_records: list[dict[str, Any]] = []  # rank 0: every rank's records, in order

    def append(self, record: dict[str, Any]) -> None:
        gathered = self.dist.gather(record)
        if gathered is None:
            return
        add_job_fields(gathered)
        for r in gathered:
            assert self.writer is not None
            self.writer.append(r)
            self.all_records.append(r)


def add_job_fields(records: list[dict[str, Any]]) -> None:
    """Fields of the whole job on each rank's record of one entry (in place)."""
    rates = [r.get("tokens_per_s") for r in records]
    ok = all(r["status"] == "ok" for r in records) and all(isinstance(x, (int, float)) for x in rates)
    total = math.fsum(rates) if ok else None  # type: ignore[arg-type]
    for r in records:
        r["job_tokens_per_s"] = total
        r["job_ranks"] = len(records)
