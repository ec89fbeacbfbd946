"""Record fields that describe the host's state during a measurement (contention on a shared machine).

Merged into bench.results.schema.FIELDS; results/README.md documents each one. A field listed here
is a number unless it is named in HOST_INT, HOST_BOOL or HOST_STR.
"""

from __future__ import annotations

HOST_FIELDS: dict[str, str] = {}
HOST_INT: tuple[str, ...] = ()
HOST_BOOL: tuple[str, ...] = ()
HOST_STR: tuple[str, ...] = ()
