"""The label taxonomy, modelled on GIFCT's hash-sharing database taxonomy.

A label is ``<dimension>:<value>``. Three dimensions:

- ``type``: what the content is (image, video, audio, text, url, pdf,
  livestream recording);
- ``entity``: who produced it (a group on a designation list, an attacker's
  own material, unknown);
- ``behaviour``: what it does (imminent credible threat, graphic violence
  against defenceless people, glorification of terrorist acts,
  radicalisation/recruitment/instruction, attacker manifesto).

Unknown labels are refused, so a typo never silently creates a new category.
Incident ids name a real-world event: lower-case words and digits joined by
hyphens, ending with its date, e.g. ``christchurch-2019-03-15``.
"""

from __future__ import annotations

import re

from node.errors import ValidationError

TAXONOMY: dict[str, dict[str, str]] = {
    "type": {
        "image": "a still image",
        "video": "a video file",
        "livestream": "a recording of a livestream",
        "audio": "an audio file",
        "text": "a text or document",
        "pdf": "a PDF document",
        "url": "a URL",
    },
    "entity": {
        "designated-group": "produced by a group on a government or UN designation list",
        "attacker": "produced by a perpetrator of an attack (e.g. a livestream or manifesto)",
        "unknown": "producer not established",
    },
    "behaviour": {
        "imminent-credible-threat": "an imminent, credible threat of violence",
        "graphic-violence-defenceless": "graphic violence against defenceless people",
        "glorification": "glorification of terrorist acts",
        "radicalisation-recruitment-instruction": "radicalisation, recruitment or instruction",
        "manifesto": "an attacker's manifesto",
    },
}

ALL_LABELS: frozenset[str] = frozenset(f"{d}:{v}" for d, vs in TAXONOMY.items() for v in vs)

MAX_LABELS = 16
_INCIDENT = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*-\d{4}-\d{2}-\d{2}$")
MAX_INCIDENT_LEN = 64


def check_label(label: str) -> str:
    if label not in ALL_LABELS:
        raise ValidationError(
            f"unknown label {label!r}: expected <dimension>:<value> from the taxonomy "
            f"(e.g. 'behaviour:glorification'); see `ccnode labels`"
        )
    return label


def check_labels(labels: tuple[str, ...]) -> tuple[str, ...]:
    """Labels must be known, unique and sorted (so the encoding is canonical)."""
    if len(labels) > MAX_LABELS:
        raise ValidationError(f"{len(labels)} labels: expected at most {MAX_LABELS}")
    for label in labels:
        check_label(label)
    if list(labels) != sorted(set(labels)):
        raise ValidationError("labels must be unique and sorted")
    return labels


def normalize_labels(labels: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """At the edges: validate, deduplicate and sort."""
    for label in labels:
        check_label(label)
    return tuple(sorted(set(labels)))


def check_incident(incident: str) -> str:
    """An empty incident means none."""
    if incident and (len(incident) > MAX_INCIDENT_LEN or not _INCIDENT.match(incident)):
        raise ValidationError(
            f"bad incident id {incident[:MAX_INCIDENT_LEN]!r}: expected lower-case words "
            "(a-z, 0-9) joined by '-' ending in the date it began (YYYY-MM-DD), at most "
            f"{MAX_INCIDENT_LEN} characters, e.g. 'christchurch-2019-03-15'"
        )
    return incident
