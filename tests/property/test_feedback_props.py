"""Feedback entry bodies: every kind round-trips, payloads are canonical."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from node.core import labels
from node.core.entry import ZERO_ID, EntryBody, Kind
from node.core.payloads import ActionCounts, DisputeReason, decode_dispute, encode_dispute
from node.errors import ValidationError
from tests.helpers import signer_for

SIGNER = signer_for("platform.example")
label_sets = st.lists(st.sampled_from(sorted(labels.ALL_LABELS)), min_size=1, max_size=4).map(
    lambda ls: tuple(sorted(set(ls)))
)
counts = st.integers(0, 2**40).flatmap(
    lambda t: st.builds(
        lambda n, b, r, v: ActionCounts(
            t, t + 1 if n else 0, t + 2 if b + r + v else 0, t + 3, n, b, r, v
        ),
        *[st.integers(0, 1000)] * 4,
    )
)


@st.composite
def feedback_bodies(draw: st.DrawFn) -> EntryBody:
    kind = draw(st.sampled_from([Kind.ENDORSE, Kind.DISPUTE, Kind.RELABEL, Kind.ACTION_REPORT]))
    extra: dict[str, object] = {}
    if kind == Kind.DISPUTE:
        extra["payload"] = encode_dispute(draw(st.sampled_from(list(DisputeReason))))
    elif kind == Kind.RELABEL:
        extra["labels"] = draw(label_sets)
    elif kind == Kind.ACTION_REPORT:
        extra["payload"] = draw(counts).encode()
    return EntryBody(
        origin="platform.example",
        seq=draw(st.integers(1, 2**40)),
        prev=draw(st.binary(min_size=32, max_size=32).filter(lambda b: b != ZERO_ID)),
        key_id=SIGNER.key_id,
        time_ms=draw(st.integers(0, 2**45)),
        kind=kind,
        target=draw(st.binary(min_size=32, max_size=32)),
        incident=draw(st.sampled_from(["", "christchurch-2019-03-15"])),
        reason=draw(st.text(max_size=40)),
        **extra,  # type: ignore[arg-type]
    )


@given(feedback_bodies())
def test_feedback_bodies_round_trip(body: EntryBody) -> None:
    data = body.encode()
    assert EntryBody.decode(data) == body
    assert EntryBody.decode(data).encode() == data


@given(st.binary(max_size=80))
def test_any_payload_bytes_decode_to_the_same_bytes_or_are_refused(payload: bytes) -> None:
    for decode, encode in (
        (decode_dispute, encode_dispute),
        (ActionCounts.decode, ActionCounts.encode),
    ):
        try:
            value = decode(payload)  # type: ignore[operator]
        except ValidationError:
            continue
        assert encode(value) == payload  # type: ignore[operator]
