"""BatchHistogram exposes exactly what prometheus_client's own Histogram does
for the same observations (the reference here), one batch at a time."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from node.metrics import PROPAGATION_BUCKETS, BatchHistogram

NAME = "ccnode_propagation_latency_seconds"
DOC = "Time from an entry's signed time to its local commit"

seconds = st.floats(min_value=-10.0, max_value=200_000.0, allow_nan=False) | st.sampled_from(
    [0.0, *PROPAGATION_BUCKETS]  # on a bound: counted in that bucket ("le")
)
batches = st.lists(
    st.tuples(st.sampled_from(["peer", "submit"]), st.lists(seconds, max_size=40)), max_size=8
)


def exposition(registry: CollectorRegistry) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in generate_latest(registry).decode().splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


@settings(max_examples=150, deadline=None)
@given(batches)
def test_same_exposition_as_prometheus_histogram(observed: list[tuple[str, list[float]]]) -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    batch = BatchHistogram(NAME, DOC, "source", PROPAGATION_BUCKETS)
    ours.register(batch)
    reference = Histogram(NAME, DOC, ["source"], buckets=PROPAGATION_BUCKETS, registry=theirs)
    for source, values in observed:
        batch.observe_many(source, values)
        for v in values:
            reference.labels(source).observe(max(0.0, v))
    got, want = exposition(ours), exposition(theirs)
    # prometheus_client also writes a _created sample per series; we do not.
    want = {k: v for k, v in want.items() if "_created" not in k}
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-9), key


def test_buckets_must_ascend() -> None:
    with pytest.raises(ValueError, match="buckets must be a non-empty ascending sequence"):
        BatchHistogram(NAME, DOC, "source", (1.0, 0.5))
