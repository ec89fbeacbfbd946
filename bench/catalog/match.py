"""Which catalog GPU a results record ran on: its device name matched against a (merged) catalog.

Reading only: the runner matched the device when it measured (the record's `peak_gpu_id`); this
matches again with the catalog given now, so a user's [[gpu]] entry can claim a device the run
did not know.
"""

from __future__ import annotations

from typing import Any

from bench.catalog import gpus
from bench.catalog.prices import Catalog


def record_spec(record: dict[str, Any], cat: Catalog) -> tuple[gpus.GpuSpec | None, str | None]:
    """The catalog entry a record ran on, or None and why: a CPU, a MIG slice or an unknown device."""
    return gpus.catalog_spec(str(record.get("device_name") or ""), cat.gpu_list())


def record_gpu(record: dict[str, Any], cat: Catalog) -> str | None:
    """The catalog GPU id ("H100-SXM") a record ran on; None for a CPU, a MIG slice or an unknown device."""
    spec, _ = record_spec(record, cat)
    return spec.id if spec else None
