"""A small TOML writer for the flat documents this project writes.

Reading uses the standard library's ``tomllib``; writing needs only strings,
integers, booleans, lists of those, and arrays of tables, so a few lines here
beat a dependency.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

Scalar = str | int | bool | float
Value = Scalar | Sequence[Scalar]


def _scalar(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    # JSON string escapes are valid TOML basic-string escapes.
    return json.dumps(value, ensure_ascii=False)


def _value(value: Value) -> str:
    if isinstance(value, str | int | bool | float):
        return _scalar(value)
    return "[" + ", ".join(_scalar(v) for v in value) + "]"


def dumps(
    top: Mapping[str, Value],
    tables: Mapping[str, Mapping[str, Value]] | None = None,
    arrays: Mapping[str, Sequence[Mapping[str, Value]]] | None = None,
    comments: Mapping[str, str] | None = None,
) -> str:
    """Top-level keys, then ``[table]`` sections, then ``[[array]]`` tables.

    ``comments`` maps a key (``name`` or ``table.name``) to a comment line
    written above it.
    """
    comments = comments or {}
    lines: list[str] = []

    def emit(prefix: str, items: Mapping[str, Value]) -> None:
        for key, value in items.items():
            note = comments.get(f"{prefix}{key}")
            if note:
                lines.append(f"# {note}")
            lines.append(f"{key} = {_value(value)}")

    emit("", top)
    for name, table in (tables or {}).items():
        lines += ["", f"[{name}]"]
        emit(f"{name}.", table)
    for name, rows in (arrays or {}).items():
        for row in rows:
            lines += ["", f"[[{name}]]"]
            emit(f"{name}.", row)
    return "\n".join(lines) + "\n"
