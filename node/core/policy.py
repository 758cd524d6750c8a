"""Per-member policy: what this node recommends doing with a match.

Each member acts on shared hashes by its own laws. A policy is an ordered
list of rules in a TOML file (``DIR/policy.toml``; docs/policy.md has the
full reference and examples); the first rule whose conditions all hold
decides the action, and ``default`` applies when none does::

    version = 1
    default = "review"                 # block | review | log_only | ignore
    designation_list = ["behaviour:imminent-credible-threat", "entity:designated-group"]

    [[rule]]
    name = "outside-designation"
    action = "ignore"
    designated = false                 # no label is on designation_list

    [[rule]]
    name = "gov-plus-two-platforms"
    action = "block"
    submitter_kind = ["government"]
    min_endorsements = 2
    endorser_kind = ["platform"]

Conditions (all optional; a rule with none matches everything):

=======================  ==================================================
key                      holds when
=======================  ==================================================
labels_any               the entry has at least one of these labels
labels_all               the entry has all of these labels
labels_none              the entry has none of these labels
designated               true: a label is on ``designation_list``;
                         false: no label is
incident                 the entry's incident is one of these ids
has_incident             the entry names an incident (true) or not (false)
submitter                the submitter is one of these member ids
submitter_kind           the submitter's kind is one of these
submitter_jurisdiction   the submitter's jurisdiction is one of these
urgent                   the entry's urgent flag equals this
settled                  the entry is settled in the transparency log
                         (unknown counts as false)
min_endorsements /       at least / at most this many distinct members
max_endorsements         endorse it (never the submitter itself), counting
                         only ``endorser_kind`` / ``endorser_jurisdiction``
                         members when those are given
min_endorser_kinds       the counted endorsers are of at least this many
                         distinct member kinds
min_disputes /           at least / at most this many distinct members
max_disputes             dispute it, counting only ``dispute_reason`` /
                         ``disputer_kind`` when given
min_distance /           the match's distance (PDQ bits; 0 for exact
max_distance             algorithms, and for ``policy explain`` of an
                         image or exact-hash entry) is at least / at most
                         this
origin_status            the origin's standing here is one of these:
                         active, revoked (either kind), revoked-member,
                         revoked-key, unknown-origin, equivocated (this
                         node holds evidence that it forked its log)
min_query_pct            a video match: at least this share (0..100) of the
                         upload's distinct frame hashes matched (pytx query%)
min_banked_pct           a video match: at least this share (0..100) of the
                         banked video's distinct frame hashes matched
                         (pytx banked%)
min_matched_seconds      a video match: the matched frames span at least
                         this many seconds of the banked video
min_audio_similarity     an audio match: the aligned stretch's similarity
                         (1 - bit error rate, 0..1) is at least this
min_aligned_seconds      an audio match: the aligned stretch is at least
                         this many seconds long
=======================  ==================================================

The video conditions hold only for a video match and the audio conditions
only for an audio match: a rule with one never applies to any other match.
The distance conditions never hold for a video or audio match, which has
no one hash distance (its coverage or similarity is what the video and
audio conditions test), nor for a VPDQ or CHROMAPRINT entry explained
without a query: only a video or audio match can reach one.

Labels are the *effective* labels: the submitter's latest relabel if any.
A retracted entry is always IGNORE, before any rule. Evaluation is pure and
total: any valid policy and any facts give a decision; it never raises.
"""

from __future__ import annotations

import enum
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from node.core import labels as labels_mod
from node.core.entry import EntryBody, a_an, check_member_id
from node.core.feedback import Aggregate
from node.core.payloads import DisputeReason
from node.core.trust import Member, MemberKind, Standing
from node.errors import ValidationError

POLICY_VERSION = 1
MAX_RULES = 1000
MAX_COUNT = 10_000
_JURISDICTION = re.compile(r"^[A-Z]{2}$")
RETRACTED_RULE = "(retracted)"
DEFAULT_RULE = "(default)"


class Action(enum.Enum):
    BLOCK = "block"
    REVIEW = "review"
    LOG_ONLY = "log_only"
    IGNORE = "ignore"

    @property
    def wire(self) -> str:
        """The name in match answers: ``BLOCK``, ``REVIEW``, ``LOG_ONLY``, ``IGNORE``."""
        return self.name

    @classmethod
    def parse(cls, text: object, where: str) -> Action:
        if isinstance(text, str):
            key = text.strip().lower().replace("-", "_")
            for action in cls:
                if action.value == key:
                    return action
        raise ValidationError(
            f"{where}: action {text!r}: expected one of {', '.join(a.value for a in cls)}"
        )


# -- facts ---------------------------------------------------------------------


#: How a counted vote of a member revoked since is flagged in explanations.
REVOKED_VOTE = "revoked: signed before its cut-off"


@dataclass(frozen=True, slots=True)
class Voter:
    member: str
    kind: str  # MemberKind value
    jurisdiction: str
    reason: str = ""  # dispute reason text, for disputes
    revoked: bool = False  # a revoked member's vote from before its cut-off (it counts)


@dataclass(frozen=True, slots=True)
class VideoFacts:
    """How a video query matched one banked video (node/match/video.py)."""

    query_pct: float
    banked_pct: float
    matched_ms: int


@dataclass(frozen=True, slots=True)
class AudioFacts:
    """How an audio query matched one banked soundtrack (node/match/audio_index.py)."""

    similarity: float  # 1 - bit error rate over the aligned stretch, 0..1
    aligned_s: float  # the aligned stretch's length


@dataclass(frozen=True, slots=True)
class Facts:
    """What the policy may look at for one entry (all already verified)."""

    labels: tuple[str, ...] = ()
    incident: str = ""
    submitter: str = ""
    submitter_kind: str = ""
    submitter_jurisdiction: str = ""
    urgent: bool = False
    endorsers: tuple[Voter, ...] = ()
    disputers: tuple[Voter, ...] = ()
    settled: bool = False
    retracted: bool = False
    distance: int = 0  # the match's; 0 for exact algorithms and for an entry without a query
    algorithm: str = ""  # the entry's (VPDQ and CHROMAPRINT entries have no one distance)
    origin_status: frozenset[str] = frozenset({"active"})  # see origin_status()
    video: VideoFacts | None = None  # set for a video match only
    audio: AudioFacts | None = None  # set for an audio match only (no distance then)


ORIGIN_STATUSES = (
    "active",
    "revoked",
    "revoked-member",
    "revoked-key",
    "unknown-origin",
    "equivocated",
)


def origin_status(standing: Standing, *, equivocated: bool) -> frozenset[str]:
    """Every name the origin's standing answers to in a rule's ``origin_status``."""
    out = {standing.value}
    if standing in (Standing.REVOKED_MEMBER, Standing.REVOKED_KEY):
        out.add("revoked")
    if equivocated:
        out.add("equivocated")
    return frozenset(out)


def facts_for(
    body: EntryBody,
    submitter: Member | None,
    feedback: Aggregate,
    *,
    retracted: bool,
    settled: bool | None,
    distance: int = 0,
    origin_status: frozenset[str] = frozenset({"active"}),
    video: VideoFacts | None = None,
    audio: AudioFacts | None = None,
) -> Facts:
    """Facts of a stored ADD entry; ``settled`` None (unknown) counts as False."""
    return Facts(
        labels=feedback.labels,
        incident=body.incident,
        submitter=body.origin,
        submitter_kind=submitter.kind.value if submitter else "",
        submitter_jurisdiction=submitter.jurisdiction if submitter else "",
        urgent=body.urgent,
        endorsers=tuple(
            Voter(v.member, v.member_kind, v.jurisdiction, revoked=v.revoked)
            for v in feedback.endorsements
        ),
        disputers=tuple(
            Voter(
                v.member,
                v.member_kind,
                v.jurisdiction,
                v.reason.text if v.reason else "",
                revoked=v.revoked,
            )
            for v in feedback.disputes
        ),
        settled=bool(settled),
        retracted=retracted,
        distance=distance,
        algorithm=body.algorithm,
        origin_status=origin_status,
        video=video,
        audio=audio,
    )


# -- conditions ----------------------------------------------------------------


def _words(items: Iterable[str]) -> str:
    xs = sorted(items)
    if len(xs) == 1:
        return xs[0]
    return ", ".join(xs[:-1]) + " or " + xs[-1]


def _have(items: Iterable[str]) -> str:
    xs = sorted(items)
    return ", ".join(xs) if xs else "none"


@dataclass(frozen=True, slots=True)
class Condition:
    """One test on the facts, with its plain-words description."""

    words: str  # what it asks, for `ccnode policy check`
    holds: Callable[[Facts], bool] = field(repr=False, compare=False)
    got: Callable[[Facts], str] = field(repr=False, compare=False)  # what the facts say

    def explain(self, facts: Facts) -> tuple[bool, str]:
        return self.holds(facts), f"{self.words} (got: {self.got(facts)})"


def _labels_condition(key: str, wanted: frozenset[str]) -> Condition:
    def got(f: Facts) -> str:
        return "labels " + _have(f.labels)

    if key == "labels_any":
        return Condition(
            f"it has any of the labels {_words(wanted)}",
            lambda f: bool(wanted & set(f.labels)),
            got,
        )
    if key == "labels_all":
        return Condition(
            f"it has all of the labels {', '.join(sorted(wanted))}",
            lambda f: wanted <= set(f.labels),
            got,
        )
    return Condition(
        f"it has none of the labels {', '.join(sorted(wanted))}",
        lambda f: not wanted & set(f.labels),
        got,
    )


def _designated_condition(value: bool, designation: frozenset[str]) -> Condition:
    def on_list(f: Facts) -> bool:
        return bool(designation & set(f.labels))

    def got(f: Facts) -> str:
        hits = designation & set(f.labels)
        return f"on the list: {_have(hits)}" if hits else "labels " + _have(f.labels)

    if value:
        return Condition(
            "at least one of its labels is on this member's designation list", on_list, got
        )
    return Condition(
        "none of its labels is on this member's designation list",
        lambda f: not on_list(f),
        got,
    )


def _votes(
    voters: tuple[Voter, ...],
    kinds: frozenset[str] | None,
    jurisdictions: frozenset[str] | None,
    reasons: frozenset[str] | None,
) -> list[Voter]:
    return [
        v
        for v in voters
        if (kinds is None or v.kind in kinds)
        and (jurisdictions is None or v.jurisdiction in jurisdictions)
        and (reasons is None or v.reason in reasons)
    ]


def _vote_conditions(
    *,
    what: str,
    select: Callable[[Facts], list[Voter]],
    qualifier: str,
    minimum: int | None,
    maximum: int | None,
    min_kinds: int | None,
) -> list[Condition]:
    def members(f: Facts) -> int:
        return len({v.member for v in select(f)})

    def got(f: Facts) -> str:
        vs = select(f)
        if not vs:
            return f"no counted {what}"
        who = ", ".join(
            sorted(
                {
                    f"{v.member} ({v.kind}, {v.jurisdiction}"
                    + (f", {REVOKED_VOTE})" if v.revoked else ")")
                    for v in vs
                }
            )
        )
        return f"{members(f)} counted: {who}"

    verb = "endorse" if what == "endorsements" else "dispute"
    out: list[Condition] = []
    if minimum is not None:
        n = minimum
        out.append(
            Condition(
                f"at least {n} distinct member{'s' if n != 1 else ''}{qualifier} {verb} it",
                lambda f: members(f) >= n,
                got,
            )
        )
    if maximum is not None:
        m = maximum
        out.append(
            Condition(
                f"at most {m} distinct member{'s' if m != 1 else ''}{qualifier} {verb} it",
                lambda f: members(f) <= m,
                got,
            )
        )
    if min_kinds is not None:
        k = min_kinds
        out.append(
            Condition(
                f"the members{qualifier} who {verb} it are of at least {k} distinct kinds",
                lambda f: len({v.kind for v in select(f)}) >= k,
                lambda f: "kinds " + _have({v.kind for v in select(f)}),
            )
        )
    return out


# -- rules and the policy --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    action: Action
    conditions: tuple[Condition, ...] = ()

    def matches(self, facts: Facts) -> bool:
        return all(c.holds(facts) for c in self.conditions)

    def describe(self) -> str:
        verb = self.action.wire
        if not self.conditions:
            return f"{verb} every entry"
        return f"{verb} when " + ", and ".join(c.words for c in self.conditions)


@dataclass(frozen=True, slots=True)
class RuleTrace:
    name: str
    action: Action
    matched: bool
    reached: bool  # False for rules after the one that fired
    reasons: tuple[tuple[bool, str], ...]  # (holds, plain words) per condition


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    rule: str  # the rule's name, DEFAULT_RULE or RETRACTED_RULE
    index: int | None  # position of the rule that fired (0-based), None if none
    trace: tuple[RuleTrace, ...] = ()


@dataclass(frozen=True, slots=True)
class Policy:
    rules: tuple[Rule, ...] = ()
    default: Action = Action.REVIEW
    designation_list: frozenset[str] = frozenset()
    source: str = "built-in default (no policy file): REVIEW every match"

    def __post_init__(self) -> None:
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise ValidationError(f"policy: rule name {dup!r} is used twice")
        if len(self.rules) > MAX_RULES:
            raise ValidationError(f"policy has {len(self.rules)} rules: at most {MAX_RULES}")

    def evaluate(self, facts: Facts) -> Decision:
        """First matching rule wins; the default when none does."""
        if facts.retracted:
            return Decision(Action.IGNORE, RETRACTED_RULE, None)
        for i, rule in enumerate(self.rules):
            if rule.matches(facts):
                return Decision(rule.action, rule.name, i)
        return Decision(self.default, DEFAULT_RULE, None)

    def explain(self, facts: Facts) -> Decision:
        """Like :meth:`evaluate`, with every reached rule's conditions explained."""
        decision = self.evaluate(facts)
        traces: list[RuleTrace] = []
        for i, rule in enumerate(self.rules):
            reached = not facts.retracted and (decision.index is None or i <= decision.index)
            reasons = tuple(c.explain(facts) for c in rule.conditions) if reached else ()
            traces.append(
                RuleTrace(rule.name, rule.action, reached and i == decision.index, reached, reasons)
            )
        return Decision(decision.action, decision.rule, decision.index, tuple(traces))

    def describe(self) -> list[str]:
        """The policy in plain words, one line per rule, then the default."""
        lines = [f"{i + 1}. {r.name}: {r.describe()}" for i, r in enumerate(self.rules)]
        lines.append(f"otherwise: {self.default.wire}")
        if self.designation_list:
            lines.append("designation list: " + ", ".join(sorted(self.designation_list)))
        return lines

    @classmethod
    def loads(cls, text: str, source: str = "policy file") -> Policy:
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValidationError(f"{source} is not valid TOML: {exc}") from None
        return cls.from_doc(doc, source)

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any], source: str = "policy file") -> Policy:
        unknown = sorted(set(doc) - _TOP_KEYS)
        if unknown:
            raise ValidationError(
                f"{source}: unknown key {unknown[0]!r}: expected one of {', '.join(_TOP_KEYS)}"
            )
        if doc.get("version") != POLICY_VERSION:
            raise ValidationError(
                f"{source}: version {doc.get('version')!r}: expected {POLICY_VERSION}"
            )
        default = Action.parse(doc.get("default", "review"), f"{source}: default")
        designation = frozenset(
            _labels(doc.get("designation_list", []), source, "designation_list")
        )
        rows = doc.get("rule", [])
        if not isinstance(rows, list):
            raise ValidationError(f"{source}: 'rule' must be an array of tables ([[rule]])")
        rules = tuple(_rule(i, row, designation, source) for i, row in enumerate(rows))
        return cls(rules, default, designation, source)


_TOP_KEYS = frozenset({"version", "default", "designation_list", "rule"})
_RULE_KEYS = (
    "name",
    "action",
    "labels_any",
    "labels_all",
    "labels_none",
    "designated",
    "incident",
    "has_incident",
    "submitter",
    "submitter_kind",
    "submitter_jurisdiction",
    "urgent",
    "settled",
    "min_endorsements",
    "max_endorsements",
    "endorser_kind",
    "endorser_jurisdiction",
    "min_endorser_kinds",
    "min_disputes",
    "max_disputes",
    "dispute_reason",
    "disputer_kind",
    "min_distance",
    "max_distance",
    "origin_status",
    "min_query_pct",
    "min_banked_pct",
    "min_matched_seconds",
    "min_audio_similarity",
    "min_aligned_seconds",
)
MAX_POLICY_DISTANCE = 256  # PDQ hashes are 256 bits


def _strings(value: object, where: str, key: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ValidationError(f"{where}: {key} must be a non-empty list of strings")
    return list(value)


def _labels(value: object, where: str, key: str) -> list[str]:
    if value == []:
        return []
    out = _strings(value, where, key)
    for label in out:
        try:
            labels_mod.check_label(label)
        except ValidationError as exc:
            raise ValidationError(f"{where}: {key}: {exc}") from None
    return out


def _bool(value: object, where: str, key: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(f"{where}: {key} must be true or false, got {value!r}")
    return value


def _count(value: object, where: str, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise ValidationError(f"{where}: {key} must be an integer 0..{MAX_COUNT}, got {value!r}")
    return value


def _kinds(value: object, where: str, key: str) -> frozenset[str]:
    out = set()
    for text in _strings(value, where, key):
        try:
            out.add(MemberKind.parse(text).value)
        except ValidationError as exc:
            raise ValidationError(f"{where}: {key}: {exc}") from None
    return frozenset(out)


def _jurisdictions(value: object, where: str, key: str) -> frozenset[str]:
    out = _strings(value, where, key)
    for code in out:
        if not _JURISDICTION.match(code):
            raise ValidationError(
                f"{where}: {key}: {code!r}: expected an ISO 3166-1 alpha-2 code such as 'NZ'"
            )
    return frozenset(out)


def _reasons(value: object, where: str, key: str) -> frozenset[str]:
    out = set()
    for text in _strings(value, where, key):
        try:
            out.add(DisputeReason.parse(text).text)
        except ValidationError as exc:
            raise ValidationError(f"{where}: {key}: {exc}") from None
    return frozenset(out)


def _rule(i: int, row: object, designation: frozenset[str], source: str) -> Rule:
    where = f"{source}: rule #{i + 1}"
    if not isinstance(row, dict):
        raise ValidationError(f"{where}: expected a table")
    name = row.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise ValidationError(f"{where}: 'name' is required (a string of 1..100 characters)")
    where = f"{source}: rule #{i + 1} {name!r}"
    unknown = sorted(set(row) - set(_RULE_KEYS))
    if unknown:
        raise ValidationError(
            f"{where}: unknown key {unknown[0]!r}: expected one of {', '.join(_RULE_KEYS)}"
        )
    if "action" not in row:
        raise ValidationError(f"{where}: 'action' is required")
    action = Action.parse(row["action"], where)
    conditions: list[Condition] = []
    for key in ("labels_any", "labels_all", "labels_none"):
        if key in row:
            conditions.append(_labels_condition(key, frozenset(_labels(row[key], where, key))))
    if "designated" in row:
        if not designation:
            raise ValidationError(
                f"{where}: 'designated' needs a designation_list at the top of the policy"
            )
        conditions.append(
            _designated_condition(_bool(row["designated"], where, "designated"), designation)
        )
    if "incident" in row:
        ids = _strings(row["incident"], where, "incident")
        for incident in ids:
            try:
                labels_mod.check_incident(incident)
            except ValidationError as exc:
                raise ValidationError(f"{where}: incident: {exc}") from None
        wanted_ids = frozenset(ids)
        conditions.append(
            Condition(
                f"its incident is {_words(wanted_ids)}",
                lambda f: f.incident in wanted_ids,
                lambda f: f"incident {f.incident or 'none'}",
            )
        )
    if "has_incident" in row:
        has = _bool(row["has_incident"], where, "has_incident")
        conditions.append(
            Condition(
                "it names an incident" if has else "it names no incident",
                lambda f: bool(f.incident) == has,
                lambda f: f"incident {f.incident or 'none'}",
            )
        )
    if "submitter" in row:
        ids = _strings(row["submitter"], where, "submitter")
        for member_id in ids:
            try:
                check_member_id(member_id)
            except ValidationError as exc:
                raise ValidationError(f"{where}: submitter: {exc}") from None
        who = frozenset(ids)
        conditions.append(
            Condition(
                f"it was submitted by {_words(who)}",
                lambda f: f.submitter in who,
                lambda f: f"submitter {f.submitter}",
            )
        )
    if "submitter_kind" in row:
        kinds = _kinds(row["submitter_kind"], where, "submitter_kind")
        conditions.append(
            Condition(
                f"it was submitted by {a_an(_words(kinds))} member",
                lambda f: f.submitter_kind in kinds,
                lambda f: f"{f.submitter} is {a_an(f.submitter_kind or 'former member')}",
            )
        )
    if "submitter_jurisdiction" in row:
        codes = _jurisdictions(row["submitter_jurisdiction"], where, "submitter_jurisdiction")
        conditions.append(
            Condition(
                f"its submitter's jurisdiction is {_words(codes)}",
                lambda f: f.submitter_jurisdiction in codes,
                lambda f: f"jurisdiction {f.submitter_jurisdiction or 'unknown'}",
            )
        )
    for key in ("urgent", "settled"):
        if key in row:
            conditions.append(_flag_condition(key, _bool(row[key], where, key)))
    conditions += _endorsement_conditions(row, where)
    conditions += _dispute_conditions(row, where)
    conditions += _distance_conditions(row, where)
    if "origin_status" in row:
        wanted = frozenset(_strings(row["origin_status"], where, "origin_status"))
        unknown = sorted(wanted - set(ORIGIN_STATUSES))
        if unknown:
            raise ValidationError(
                f"{where}: origin_status {unknown[0]!r}: expected any of "
                f"{', '.join(ORIGIN_STATUSES)}"
            )
        conditions.append(
            Condition(
                f"its origin is {_words(wanted)}",
                lambda f: bool(wanted & f.origin_status),
                lambda f: f"origin {f.submitter} is {', '.join(sorted(f.origin_status))}",
            )
        )
    conditions += _media_conditions(row, where, "video")
    conditions += _media_conditions(row, where, "audio")
    return Rule(name, action, tuple(conditions))


def _distance_conditions(row: Mapping[str, Any], where: str) -> list[Condition]:
    def bound(key: str) -> int | None:
        if key not in row:
            return None
        value = row[key]
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or not 0 <= value <= MAX_POLICY_DISTANCE
        ):
            raise ValidationError(
                f"{where}: {key} must be an integer 0..{MAX_POLICY_DISTANCE}, got {value!r}"
            )
        return value

    lo, hi = bound("min_distance"), bound("max_distance")
    _check_range(lo, hi, where, "distance")
    out: list[Condition] = []

    # A video or audio match has no one hash distance (its frames or items
    # each have their own; its coverage or similarity is what the media
    # conditions test): a distance rule is about hash matches only.
    # Nor has a VPDQ or CHROMAPRINT entry looked at without a query
    # (`policy explain`): only a video or audio match reaches one.
    def got(f: Facts) -> str:
        if f.audio is not None:
            return "an audio match, no distance"
        if f.video is not None:
            return "a video match, no distance"
        if f.algorithm in _MEDIA_ENTRIES:
            return f"a {_MEDIA_ENTRIES[f.algorithm]} entry, no distance"
        return f"distance {f.distance}"

    def hashed(f: Facts) -> bool:
        return f.audio is None and f.video is None and f.algorithm not in _MEDIA_ENTRIES

    if lo is not None:
        out.append(
            Condition(
                f"the match is at distance {lo} or more",
                lambda f: hashed(f) and f.distance >= lo,
                got,
            )
        )
    if hi is not None:
        out.append(
            Condition(
                f"the match is at distance {hi} or less",
                lambda f: hashed(f) and f.distance <= hi,
                got,
            )
        )
    return out


#: entries matched only by a video or audio query, never at one hash distance
_MEDIA_ENTRIES = {"VPDQ": "video (VPDQ)", "CHROMAPRINT": "soundtrack (CHROMAPRINT)"}


def _number(value: object, where: str, key: str, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= hi:
        raise ValidationError(f"{where}: {key} must be a number 0..{hi:g}, got {value!r}")
    return float(value)


def _video_got(f: Facts) -> str:
    v = f.video
    if v is None:
        return "not a video match"
    return f"query {v.query_pct:g}%, banked {v.banked_pct:g}%, matched {v.matched_ms / 1000:g} s"


def _audio_got(f: Facts) -> str:
    a = f.audio
    if a is None:
        return "not an audio match"
    return f"similarity {a.similarity:.4f}, aligned {a.aligned_s:.1f} s"


#: key -> (cap, words for the threshold, the fact compared, its scale to the key's unit)
MediaKeys = dict[str, tuple[float, str, str, float]]

_VIDEO_KEYS: MediaKeys = {
    "min_query_pct": (100, "with at least {:g}% of the upload's frames matched", "query_pct", 1),
    "min_banked_pct": (
        100,
        "with at least {:g}% of the banked video's frames matched",
        "banked_pct",
        1,
    ),
    "min_matched_seconds": (
        86_400,
        "spanning at least {:g} s of the banked video",
        "matched_ms",
        1000,
    ),
}

_AUDIO_KEYS: MediaKeys = {
    "min_audio_similarity": (1, "with a similarity of at least {:g}", "similarity", 1),
    "min_aligned_seconds": (86_400, "aligned over at least {:g} s", "aligned_s", 1),
}


def _video_facts(f: Facts) -> VideoFacts | AudioFacts | None:
    return f.video


def _audio_facts(f: Facts) -> VideoFacts | AudioFacts | None:
    return f.audio


_MEDIA = {
    "video": ("a video match", _VIDEO_KEYS, _video_facts, _video_got),
    "audio": ("an audio match", _AUDIO_KEYS, _audio_facts, _audio_got),
}


def _media_condition(media: str, attr: str, threshold: float, words: str) -> Condition:
    """A threshold on the video or audio facts; it never holds without them."""
    what, _, select, got = _MEDIA[media]

    def holds(f: Facts) -> bool:
        facts = select(f)
        return facts is not None and getattr(facts, attr) >= threshold

    return Condition(f"{what} {words}", holds, got)


def _media_conditions(row: Mapping[str, Any], where: str, media: str) -> list[Condition]:
    out = []
    for key, (cap, words, attr, scale) in _MEDIA[media][1].items():
        if key in row:
            value = _number(row[key], where, key, cap)
            out.append(_media_condition(media, attr, value * scale, words.format(value)))
    return out


_FLAG_WORDS = {
    ("urgent", True): "it is flagged urgent (a live incident)",
    ("urgent", False): "it is not flagged urgent",
    ("settled", True): "it is settled in the transparency log",
    ("settled", False): "it is not (known to be) settled in the transparency log",
}


def _flag_condition(attr: str, want: bool) -> Condition:
    def value(f: Facts) -> bool:
        return bool(f.urgent if attr == "urgent" else f.settled)

    return Condition(
        _FLAG_WORDS[(attr, want)],
        lambda f: value(f) == want,
        lambda f: f"{attr} {'yes' if value(f) else 'no'}",
    )


def _optional_count(row: Mapping[str, Any], key: str, where: str) -> int | None:
    return _count(row[key], where, key) if key in row else None


def _check_range(lo: int | None, hi: int | None, where: str, what: str) -> None:
    if lo is not None and hi is not None and lo > hi:
        raise ValidationError(f"{where}: min_{what} {lo} is more than max_{what} {hi}")


def _endorsement_conditions(row: Mapping[str, Any], where: str) -> list[Condition]:
    lo = _optional_count(row, "min_endorsements", where)
    hi = _optional_count(row, "max_endorsements", where)
    min_kinds = _optional_count(row, "min_endorser_kinds", where)
    kinds = _kinds(row["endorser_kind"], where, "endorser_kind") if "endorser_kind" in row else None
    codes = (
        _jurisdictions(row["endorser_jurisdiction"], where, "endorser_jurisdiction")
        if "endorser_jurisdiction" in row
        else None
    )
    _check_range(lo, hi, where, "endorsements")
    if (kinds is not None or codes is not None) and lo is None and hi is None and min_kinds is None:
        raise ValidationError(
            f"{where}: endorser_kind/endorser_jurisdiction need min_endorsements, "
            "max_endorsements or min_endorser_kinds"
        )
    qualifier = ""
    if kinds is not None:
        qualifier += f" of kind {_words(kinds)}"
    if codes is not None:
        qualifier += f" in {_words(codes)}"

    def select(f: Facts) -> list[Voter]:
        return _votes(f.endorsers, kinds, codes, None)

    return _vote_conditions(
        what="endorsements",
        select=select,
        qualifier=qualifier,
        minimum=lo,
        maximum=hi,
        min_kinds=min_kinds,
    )


def _dispute_conditions(row: Mapping[str, Any], where: str) -> list[Condition]:
    lo = _optional_count(row, "min_disputes", where)
    hi = _optional_count(row, "max_disputes", where)
    reasons = (
        _reasons(row["dispute_reason"], where, "dispute_reason")
        if "dispute_reason" in row
        else None
    )
    kinds = _kinds(row["disputer_kind"], where, "disputer_kind") if "disputer_kind" in row else None
    _check_range(lo, hi, where, "disputes")
    if (reasons is not None or kinds is not None) and lo is None and hi is None:
        raise ValidationError(
            f"{where}: dispute_reason/disputer_kind need min_disputes or max_disputes"
        )
    qualifier = ""
    if kinds is not None:
        qualifier += f" of kind {_words(kinds)}"
    if reasons is not None:
        qualifier += f" (reason {_words(reasons)})"

    def select(f: Facts) -> list[Voter]:
        return _votes(f.disputers, kinds, None, reasons)

    return _vote_conditions(
        what="disputes",
        select=select,
        qualifier=qualifier,
        minimum=lo,
        maximum=hi,
        min_kinds=None,
    )


DEFAULT_POLICY = Policy()


# -- one verdict per query ----------------------------------------------------------

#: How the hits of one query combine into one recommended action: the most
#: severe wins, BLOCK over REVIEW over LOG_ONLY over IGNORE (a retracted
#: entry's IGNORE never outweighs a live hit). An action name this code does
#: not know (a newer node) counts as REVIEW: a person should look.
PRECEDENCE = (Action.BLOCK, Action.REVIEW, Action.LOG_ONLY, Action.IGNORE)
_RANK = {a.wire: i for i, a in enumerate(PRECEDENCE)}


@dataclass(frozen=True, slots=True)
class QueryVerdict:
    action: str  # wire name
    rule: str  # the rule that recommended it
    entry_id: bytes  # the hit it came from


def overall(hits: Iterable[tuple[str, str, bytes]]) -> QueryVerdict | None:
    """One query's verdict from its hits ``(action, rule, entry_id)``, given
    nearest first: the most severe action by :data:`PRECEDENCE`, and among
    equally severe hits the first (the nearest); None for no hits."""
    best: QueryVerdict | None = None
    for action, rule, entry_id in hits:
        if best is None or _rank(action) < _rank(best.action):
            best = QueryVerdict(action, rule, entry_id)
    return best


def _rank(action: str) -> int:
    return _RANK.get(action, _RANK[Action.REVIEW.wire])
