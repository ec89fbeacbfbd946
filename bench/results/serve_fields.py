"""Record fields of a serving load point (family `serve`, written by `tokenbench serve`).

Merged into bench.results.schema.FIELDS; bench/serve/README.md documents each one. A field listed
here is a number unless it is named in SERVE_INT, SERVE_BOOL or SERVE_STR.
"""

from __future__ import annotations

SERVE_FIELDS: dict[str, str] = {}
SERVE_INT: tuple[str, ...] = ()
SERVE_BOOL: tuple[str, ...] = ()
SERVE_STR: tuple[str, ...] = ()
