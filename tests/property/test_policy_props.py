"""Policy properties: first-match semantics, and nothing makes evaluation raise."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from node.core.labels import ALL_LABELS
from node.core.payloads import DisputeReason
from node.core.policy import DEFAULT_RULE, RETRACTED_RULE, Action, Facts, Policy, Voter
from node.errors import ValidationError

LABELS = sorted(ALL_LABELS)
KINDS = ["government", "platform", "ngo", "observer"]
CODES = ["NZ", "FR", "US", "DE"]
MEMBERS = ["gov.nz/dia", "gov.fr/pharos", "p1.example", "p2.example", "ngo.example/desk"]
INCIDENTS = ["christchurch-2019-03-15", "halle-2019-10-09"]
REASONS = [r.text for r in DisputeReason]


def sub(xs: list[str]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(xs), min_size=1, max_size=3, unique=True)


CONDITIONS: dict[str, st.SearchStrategy[Any]] = {
    "labels_any": sub(LABELS),
    "labels_all": sub(LABELS),
    "labels_none": sub(LABELS),
    "designated": st.booleans(),
    "incident": sub(INCIDENTS),
    "has_incident": st.booleans(),
    "submitter": sub(MEMBERS),
    "submitter_kind": sub(KINDS),
    "submitter_jurisdiction": sub(CODES),
    "urgent": st.booleans(),
    "settled": st.booleans(),
    "min_endorsements": st.integers(0, 4),
    "max_endorsements": st.integers(4, 6),
    "endorser_kind": sub(KINDS),
    "endorser_jurisdiction": sub(CODES),
    "min_endorser_kinds": st.integers(0, 3),
    "min_disputes": st.integers(0, 3),
    "max_disputes": st.integers(3, 5),
    "dispute_reason": sub(REASONS),
    "disputer_kind": sub(KINDS),
}


@st.composite
def rule_rows(draw: st.DrawFn, name: str) -> dict[str, Any]:
    keys = draw(st.lists(st.sampled_from(sorted(CONDITIONS)), max_size=4, unique=True))
    row: dict[str, Any] = {
        "name": name,
        "action": draw(st.sampled_from([a.value for a in Action])),
    }
    for key in keys:
        row[key] = draw(CONDITIONS[key])
    if ("endorser_kind" in row or "endorser_jurisdiction" in row) and not (
        {"min_endorsements", "max_endorsements", "min_endorser_kinds"} & set(row)
    ):
        row["min_endorsements"] = 1
    if ("dispute_reason" in row or "disputer_kind" in row) and not (
        {"min_disputes", "max_disputes"} & set(row)
    ):
        row["min_disputes"] = 1
    return row


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    n = draw(st.integers(0, 6))
    rows = [draw(rule_rows(f"r{i}")) for i in range(n)]
    doc = {
        "version": 1,
        "default": draw(st.sampled_from([a.value for a in Action])),
        "designation_list": draw(sub(LABELS)),
        "rule": rows,
    }
    return Policy.from_doc(doc, "generated")


voters = st.builds(
    Voter,
    st.sampled_from(MEMBERS),
    st.sampled_from(KINDS),
    st.sampled_from(CODES),
    st.sampled_from(["", *REASONS]),
)
facts = st.builds(
    Facts,
    labels=st.lists(st.sampled_from(LABELS), max_size=4, unique=True).map(
        lambda xs: tuple(sorted(xs))
    ),
    incident=st.sampled_from(["", *INCIDENTS]),
    submitter=st.sampled_from(MEMBERS),
    submitter_kind=st.sampled_from(["", *KINDS]),
    submitter_jurisdiction=st.sampled_from(["", *CODES]),
    urgent=st.booleans(),
    endorsers=st.lists(voters, max_size=5).map(tuple),
    disputers=st.lists(voters, max_size=5).map(tuple),
    settled=st.booleans(),
    retracted=st.booleans(),
)


@given(policies(), facts)
def test_the_first_matching_rule_decides(policy: Policy, f: Facts) -> None:
    d = policy.evaluate(f)
    alone = [
        Policy((r,), policy.default, policy.designation_list).evaluate(f) for r in policy.rules
    ]
    if f.retracted:
        assert (d.action, d.rule, d.index) == (Action.IGNORE, RETRACTED_RULE, None)
        return
    matching = [i for i, a in enumerate(alone) if a.index == 0]
    if not matching:
        assert (d.action, d.rule, d.index) == (policy.default, DEFAULT_RULE, None)
        return
    k = matching[0]
    assert (d.action, d.rule, d.index) == (policy.rules[k].action, policy.rules[k].name, k)
    # Rules after the one that fired change nothing; removing it passes to the next match.
    truncated = Policy(policy.rules[: k + 1], policy.default, policy.designation_list)
    assert truncated.evaluate(f) == d
    rest = policy.rules[:k] + policy.rules[k + 1 :]
    after = Policy(rest, policy.default, policy.designation_list).evaluate(f)
    nxt = matching[1] if len(matching) > 1 else None
    assert after.rule == (policy.rules[nxt].name if nxt is not None else DEFAULT_RULE)


@given(policies(), facts)
def test_explain_agrees_with_evaluate_and_never_raises(policy: Policy, f: Facts) -> None:
    d = policy.evaluate(f)
    e = policy.explain(f)
    assert (e.action, e.rule, e.index) == (d.action, d.rule, d.index)
    assert len(e.trace) == len(policy.rules)
    assert [t.name for t in e.trace if t.matched] == ([] if d.index is None else [d.rule])
    for t in e.trace:
        if t.reached and t.reasons:
            assert t.matched == all(h for h, _ in t.reasons)
    assert policy.describe()[-1 if not policy.designation_list else -2].startswith("otherwise: ")


junk = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.text(max_size=12)
    | st.sampled_from(LABELS + KINDS + CODES + REASONS + INCIDENTS + ["block", "ignore"]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


@given(
    st.dictionaries(
        st.sampled_from(["version", "default", "designation_list", "rule", "extra"]),
        junk,
        max_size=4,
    ),
    st.lists(
        st.dictionaries(st.sampled_from(["name", "action", *CONDITIONS, "typo"]), junk, max_size=6),
        max_size=3,
    ),
    facts,
)
def test_any_document_is_a_policy_or_a_validation_error(
    doc: dict[str, Any], rows: list[dict[str, Any]], f: Facts
) -> None:
    doc = {"version": 1, **doc}
    if rows:
        doc["rule"] = rows
    try:
        policy = Policy.from_doc(doc)
    except ValidationError:
        return
    assert isinstance(policy.explain(f).action, Action)
