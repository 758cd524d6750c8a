"""The HTTP API's OpenAPI 3 document, served at ``/openapi.json``.

Written by hand beside the routes (node/httpapi/server.py ``ROUTES``); a test
checks that every served route is documented here and nothing else is.
"""

from __future__ import annotations

from typing import Any

from node import __version__

_ERROR = {"$ref": "#/components/responses/Error"}


def _param(name: str, where: str, description: str, *, required: bool = False) -> dict[str, Any]:
    kind = "boolean" if name in _BOOLEANS else "integer" if name in _INTEGERS else "string"
    return {
        "name": name,
        "in": where,
        "required": required or where == "path",
        "description": description,
        "schema": {"type": kind},
    }


_BOOLEANS = {"include_distance", "include_retracted", "report_all"}
_INTEGERS = {"max_distance"}

_SIGNAL_TYPE = _param(
    "signal_type", "query", "HMA signal type: pdq, md5, sha256 or video_md5", required=True
)
_SIGNAL = _param("signal", "query", "the hash, in hex", required=True)
_BANKS = _param("banks", "query", "only these banks (origin member ids), comma-separated")
_TYPES = _param("types", "query", "only these signal types, comma-separated")
_RETRACTED = _param("include_retracted", "query", "also retracted entries (flagged)")
_REPORT_ALL = _param("report_all", "query", "also near-miss videos and tracks")
_URL = _param("url", "query", "fetch the file from here: only under the node's http_url_allowlist")
_CONTENT_TYPE = _param("content_type", "query", "the fetched file: photo, video or audio")

_UPLOAD = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "description": "one file, in a field named photo, video, audio or file "
                "(file: sniffed)",
                "additionalProperties": {"type": "string", "format": "binary"},
            }
        }
    },
}

_BANK_MATCHES = {
    "type": "object",
    "description": "bank (origin member id) -> its matches",
    "additionalProperties": {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "bank_content_id": {"type": "string", "description": "entry id (hex)"},
                "distance": {"type": "string"},
            },
        },
    },
}


def _json_body(properties: dict[str, Any], required: str) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object", "required": [required], "properties": properties}
            }
        },
    }


def _ok(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "200": {
            "description": description,
            "content": {"application/json": {"schema": schema or {"type": "object"}}},
        },
        "default": _ERROR,
    }


def _op(
    summary: str,
    scope: str,
    responses: dict[str, Any],
    parameters: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "responses": responses,
        "parameters": parameters or [],
        "security": [{"apiKey": [scope]}] if scope else [],
    }
    if scope:
        op["x-scope"] = scope
    if body is not None:
        op["requestBody"] = body
    return op


def document() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "ccnode HTTP API",
            "version": __version__,
            "description": "HMA-compatible matching (/m, /h) and native routes (/v1) over a "
            "consortium node's indexes (docs/http.md).",
        },
        "paths": {
            "/m/raw_lookup": {
                "get": _op(
                    "HMA raw lookup: matching content ids",
                    "match",
                    _ok(
                        "matches: entry ids, or {bank_content_id, distance} with include_distance",
                        {"type": "object", "properties": {"matches": {"type": "array"}}},
                    ),
                    [
                        _SIGNAL_TYPE,
                        _SIGNAL,
                        _param("include_distance", "query", "give each match's distance"),
                        _BANKS,
                    ],
                )
            },
            "/m/lookup": {
                "get": _op(
                    "HMA lookup of a hash (or url=): bank -> matches",
                    "match",
                    _ok(
                        "bank -> matches; with url=, signal type -> bank -> matches "
                        "(unless signal_type names one)",
                        _BANK_MATCHES,
                    ),
                    [
                        {**_SIGNAL_TYPE, "required": False},
                        {**_SIGNAL, "required": False},
                        _BANKS,
                        _URL,
                        _CONTENT_TYPE,
                        _TYPES,
                    ],
                ),
                "post": _op(
                    "HMA lookup of an uploaded file: signal type -> bank -> matches",
                    "match",
                    _ok("signal type -> bank -> matches"),
                    [_BANKS, _TYPES, _RETRACTED, _REPORT_ALL],
                    _UPLOAD,
                ),
            },
            "/m/index/status": {
                "get": _op(
                    "HMA index status per signal type: present, built_to, size",
                    "status",
                    _ok("signal type -> {present, built_to, size}"),
                    [{**_SIGNAL_TYPE, "required": False}],
                )
            },
            "/h/hash": {
                "get": _op(
                    "HMA hash of a fetched url (allowlisted prefixes only)",
                    "hash",
                    _ok("signal type -> hash"),
                    [{**_URL, "required": True}, _CONTENT_TYPE, _TYPES],
                ),
                "post": _op(
                    "HMA hash of an uploaded file",
                    "hash",
                    _ok("signal type -> hash"),
                    [_TYPES],
                    _UPLOAD,
                ),
            },
            "/v1/match": {
                "get": _op(
                    "Match one hash: provenance and recommended action",
                    "match",
                    _ok("results: one query answer, as `ccnode match --json`"),
                    [
                        _param(
                            "algorithm", "query", "pdq, md5, sha256, video_md5, ...", required=True
                        ),
                        _param("hash", "query", "hex", required=True),
                        _param("max_distance", "query", "PDQ distance (default 31)"),
                        _RETRACTED,
                    ],
                ),
                "post": _op(
                    "Match a batch of hashes (JSON body)",
                    "match",
                    _ok("results: one answer per query"),
                    [],
                    {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["queries"],
                                    "properties": {
                                        "queries": {
                                            "type": "array",
                                            "items": {
                                                "type": "object",
                                                "properties": {
                                                    "algorithm": {"type": "string"},
                                                    "hash": {"type": "string"},
                                                },
                                            },
                                        },
                                        "max_distance": {"type": "integer"},
                                        "include_retracted": {"type": "boolean"},
                                    },
                                }
                            }
                        },
                    },
                ),
            },
            "/v1/match/file": {
                "post": _op(
                    "Match an uploaded image, video or audio file: hashes, verdict, matches, "
                    "video and audio matches",
                    "match",
                    _ok("as `ccnode match FILE --json`, plus upload"),
                    [_RETRACTED, _REPORT_ALL],
                    _UPLOAD,
                )
            },
            "/v1/match/video": {
                "post": _op(
                    "Match a video's frames hashed by the caller (PDQ per frame, with variants)",
                    "match",
                    _ok("videos: per banked video, the decision, ranges and provenance"),
                    [],
                    _json_body(
                        {
                            "frames": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "pdq": {"type": "string"},
                                        "quality": {"type": "integer"},
                                        "ts_ms": {"type": "integer"},
                                        "variant": {"type": "integer"},
                                    },
                                },
                            },
                            "thresholds": {"type": "object"},
                            "report_all": {"type": "boolean"},
                            "include_retracted": {"type": "boolean"},
                        },
                        "frames",
                    ),
                )
            },
            "/v1/match/audio": {
                "post": _op(
                    "Match an audio fingerprint computed by the caller (Chromaprint sub-"
                    "fingerprints)",
                    "match",
                    _ok("audio: per banked track, the decision, similarity and provenance"),
                    [],
                    _json_body(
                        {
                            "fingerprint": {
                                "description": "unsigned 32-bit integers, as a list or "
                                "comma-separated",
                            },
                            "min_similarity": {"type": "number"},
                            "min_aligned_s": {"type": "number"},
                            "report_all": {"type": "boolean"},
                            "include_retracted": {"type": "boolean"},
                        },
                        "fingerprint",
                    ),
                )
            },
            "/v1/entries/{entry_id}": {
                "get": _op(
                    "One entry as a match answer (provenance, recommended action)",
                    "match",
                    _ok("a match"),
                    [_param("entry_id", "path", "64 hex digits, or a unique prefix of >= 8")],
                )
            },
            "/v1/status": {
                "get": _op("Node, replica lag and index status", "status", _ok("status"))
            },
            "/healthz": {
                "get": _op(
                    "Readiness: 200 while serving, 503 otherwise (no credentials)",
                    "",
                    {"200": {"description": "serving"}, "503": {"description": "not serving"}},
                )
            },
            "/openapi.json": {"get": _op("This document (no credentials)", "", _ok("OpenAPI 3"))},
        },
        "components": {
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "an API key from `ccnode http-key add` (scopes match, "
                    "hash, status); or mutual TLS when the node enables it",
                }
            },
            "responses": {
                "Error": {
                    "description": "an error: a stable code (a gRPC status name) and a message",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "error": {
                                        "type": "object",
                                        "properties": {
                                            "code": {"type": "string"},
                                            "message": {"type": "string"},
                                        },
                                    },
                                    "message": {"type": "string"},
                                },
                            }
                        }
                    },
                }
            },
        },
    }
