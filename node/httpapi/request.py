"""Reading an HTTP API request and refusing one: query parameters, JSON
bodies, and :class:`ApiError` with the status-code table :data:`HTTP_STATUS`
(every refusal is JSON, ``{"error": {"code": ..., "message": ...}}``, the
code a gRPC status name)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from node.errors import ValidationError

#: gRPC status (the node's error table, node/rpc/service.py) -> HTTP status.
HTTP_STATUS: dict[str, int] = {
    "INVALID_ARGUMENT": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "ALREADY_EXISTS": 409,
    "FAILED_PRECONDITION": 409,
    "PAYLOAD_TOO_LARGE": 413,
    "RESOURCE_EXHAUSTED": 429,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
}
CHUNK = 64 * 1024
#: A JSON body (POST /v1/match): 10,000 queries (the default budget) fit.
MAX_JSON_BODY = 4 << 20


class ApiError(Exception):
    """An HTTP-level refusal: the JSON error's code, its status and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = HTTP_STATUS[code]


def error_body(code: str, message: str) -> dict[str, Any]:
    # "message" also at the top: what HMA's own error responses carry.
    return {"error": {"code": code, "message": message}, "message": message}


def bool_param(request: web.Request, name: str) -> bool:
    raw = request.query.get(name, "false").strip().lower()
    if raw in ("true", "1", "yes"):
        return True
    if raw in ("false", "0", "no", ""):
        return False
    raise ValidationError(f"parameter {name}={raw[:20]!r}: expected true or false")


def param(request: web.Request, name: str) -> str:
    value = request.query.get(name)
    if value is None or not value.strip():
        raise ValidationError(f"parameter {name!r} is required")
    return value.strip()


def int_param(request: web.Request, name: str) -> int:
    raw = request.query.get(name, "0").strip() or "0"
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 6:  # "²" is a digit to isdigit()
        raise ValidationError(f"parameter {name}={raw[:20]!r}: expected a whole number")
    return int(raw)


def parse_json(body: bytes) -> Any:
    """A request body's JSON; refused (not a fault of the node) when it is
    not JSON or nests deeper than the parser's recursion limit."""
    try:
        return json.loads(body)
    except ValueError:
        raise ValidationError("request body is not valid JSON") from None
    except RecursionError:
        raise ValidationError("request body: JSON nested too deeply") from None


async def json_body(request: web.Request) -> dict[str, Any]:
    body = await request.read()
    # a large body is parsed off the loop
    doc = parse_json(body) if len(body) < CHUNK else await asyncio.to_thread(parse_json, body)
    if not isinstance(doc, dict):
        raise ValidationError("request body: expected a JSON object")
    return doc
