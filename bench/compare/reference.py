"""Reference baselines: results measured on known-good GPUs, one folder per catalog GPU model.

`results/reference/<GPU id>/` holds the runs (`<run-id>.jsonl` and `.json`) and a
`provenance.toml` saying who measured them, when, on what machine and how. A folder without
provenance is refused: a baseline nobody can vouch for does not get to fail a node.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from bench.catalog import prices
from bench.catalog.gpus import check_date
from bench.catalog.match import record_gpu
from bench.errors import first_error

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "results" / "reference"
PROVENANCE = "provenance.toml"


class ReferenceError(ValueError):
    """No usable reference; the message says what is missing and how to add it."""


class Provenance(BaseModel):
    """Where a reference came from. Every field is required: these are the numbers nodes are judged by."""

    model_config = ConfigDict(extra="forbid", strict=True)

    gpu: str  # catalog GPU id, the folder's name
    measured_on: str  # date, YYYY-MM-DD
    measured_by: str  # who ran it
    machine: str  # the node: provider or vendor, model, GPU count, where
    command: str  # the tokenbench command that produced the runs
    notes: str = ""

    @field_validator("measured_on", mode="before")
    @classmethod
    def _date(cls, v: str) -> str:
        return check_date(v)

    def summary(self) -> str:
        """Who measured the reference, when and on what machine, in one line."""
        return f"{self.gpu} measured {self.measured_on} by {self.measured_by} on {self.machine}"


def read_provenance(folder: Path) -> Provenance:
    """The folder's provenance.toml, validated; a ReferenceError saying what is wrong otherwise."""
    path = folder / PROVENANCE
    if not path.is_file():
        raise ReferenceError(f"{folder}: no {PROVENANCE}; a reference needs its provenance (see results/README.md)")
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
        prov = Provenance.model_validate(data)
    except tomllib.TOMLDecodeError as e:
        raise ReferenceError(f"{path}: not valid TOML ({e})") from None
    except ValidationError as e:
        raise ReferenceError(f"{path}: {first_error(e)}") from None
    if prov.gpu != folder.name:
        raise ReferenceError(f"{path}: gpu = {prov.gpu!r} but the folder is {folder.name!r}")
    return prov


def available(ref_dir: Path) -> list[str]:
    """The GPU ids that have a reference folder."""
    return sorted(p.name for p in ref_dir.iterdir() if p.is_dir()) if ref_dir.is_dir() else []


def candidate_gpu(records: list[dict[str, Any]], cat: prices.Catalog) -> str:
    """The one catalog GPU model the candidate ran on; an error when none or several."""
    models = {record_gpu(r, cat) for r in records}
    names = sorted({str(r.get("device_name")) for r in records if record_gpu(r, cat) is None})
    if None in models:
        raise ReferenceError(
            f"no reference for {', '.join(names)}: references are kept for catalog GPUs only "
            "(a CPU, a MIG slice or an unknown device has none); compare against a baseline you name"
        )
    ids = {m for m in models if m is not None}
    if len(ids) != 1:
        raise ReferenceError(f"the candidate holds records from several GPU models ({', '.join(sorted(ids))}); "
                             "compare them one model at a time")  # fmt: skip
    return ids.pop()


def find(ref_dir: Path, gpu: str) -> tuple[Path, Provenance]:
    """The reference folder for `gpu` and its provenance, or why there is none."""
    folder = ref_dir / gpu
    if not folder.is_dir() or not any(folder.rglob("*.jsonl")):
        have = ", ".join(available(ref_dir)) or "none"
        raise ReferenceError(
            f"no reference results for {gpu} in {ref_dir} (references held: {have}); measure `tokenbench run "
            f"--suite node` on a known-good {gpu}, then add the run and a {PROVENANCE} in {folder}"
        )
    return folder, read_provenance(folder)
