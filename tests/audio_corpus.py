"""A seeded negative corpus of generated audio, for the false-match test and
benchmark (tests/integration/test_audio_false_matches.py,
scripts/bench/audio_false_matches.py, docs/benchmarks.md).

Five kinds of track, each from its own seed, 10 to 18 s (every one long
enough for the 7-s rule), mono 11,025 Hz (the fingerprint's own rate; it
reads nothing above 3.5 kHz):

- ``music``: a random key, mode, tempo and four-chord progression played as
  pads of harmonic tones with attack-decay envelopes, a melody random-walking
  the scale in a plucked timbre, often a bass line, and often drums (kick: a
  falling sine; snare: a noise burst and a tone; hi-hat: short bright noise);
- ``speech``: a glottal pulse train (random pitch, intonation and jitter)
  shaped by the formants of random vowels, three to seven syllables a second
  with raised-cosine envelopes, some opened by a fricative noise burst, in
  phrases with pauses;
- ``noise``: white, pink or brown, steady, slowly modulated or in bursts;
- ``quiet``: digital silence, dither, a noise floor, mains hum, rare clicks
  over near silence, and faint music (-45 dBFS): silence and near silence;
- ``tone``: held sines, square waves and organ chords, telephone-like beep
  sequences, dial and busy tones, sweeps and sirens.

Tracks are rendered on demand (:func:`render`) from a :class:`Spec`; the
same spec always gives the same samples.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from node.match.audio_index import AudioIndex

RATE = 11025
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

#: Tracks of each kind in a corpus of 240; other sizes keep the proportions.
SHARES = (("music", 90), ("speech", 60), ("noise", 36), ("quiet", 24), ("tone", 30))
KINDS = tuple(k for k, _ in SHARES)


@dataclass(frozen=True, slots=True)
class Spec:
    name: str  # e.g. "music-017"
    kind: str
    seed: int


def specs(n: int = 240, *, seed: int = 0) -> list[Spec]:
    """``n`` track specs, the kinds in the proportions of :data:`SHARES`
    (every kind at least once when ``n >= 5``), interleaved."""
    total = sum(c for _, c in SHARES)
    counts = [max(1, round(n * c / total)) for _, c in SHARES]
    while sum(counts) > n:
        counts[counts.index(max(counts))] -= 1
    while sum(counts) < n:
        counts[0] += 1
    out: list[Spec] = []
    for (kind, _), count in zip(SHARES, counts, strict=True):
        out += [
            Spec(f"{kind}-{i:03d}", kind, seed * 1_000_003 + KINDS.index(kind) * 10_007 + i)
            for i in range(count)
        ]
    return sorted(out, key=lambda s: (int(s.name.rsplit("-", 1)[1]), KINDS.index(s.kind)))


def render(spec: Spec) -> F32:
    """The track's samples: mono float32 in [-1, 1] at :data:`RATE`."""
    rng = np.random.default_rng(spec.seed)
    seconds = float(rng.uniform(10, 18))
    x = _RENDER[spec.kind](rng, int(seconds * RATE))
    return np.clip(x, -1, 1).astype(np.float32)


def write_track(path: Path, spec: Spec) -> Path:
    """The track as a 16-bit PCM WAV file (PyAV), ready for ``fingerprint_file``."""
    from tests.audio_files import write

    return write(path, render(spec)[None, :], rate=RATE, codec="pcm_s16le")


def tracks(directory: Path, n: int = 240, *, seed: int = 0) -> Iterator[tuple[Spec, Path]]:
    for s in specs(n, seed=seed):
        yield s, write_track(directory / f"{s.name}.wav", s)


# -- shared pieces ---------------------------------------------------------------


def _normalise(x: F64, peak: float) -> F64:
    top = float(np.max(np.abs(x))) if len(x) else 0.0
    return x * (peak / top) if top > 0 else x


def _envelope(n: int, attack: float, decay: float) -> F64:
    """Linear attack over ``attack`` s, then exponential decay (time constant ``decay`` s)."""
    t = np.arange(n) / RATE
    rise = np.minimum(1.0, t / max(attack, 1e-4))
    return rise * np.exp(-np.maximum(0.0, t - attack) / decay)


def _harmonic(freq: float, n: int, amps: F64) -> F64:
    """A tone of ``freq`` with harmonic amplitudes ``amps`` (below Nyquist only)."""
    t = np.arange(n) / RATE
    out = np.zeros(n)
    for h, a in enumerate(amps, start=1):
        if freq * h < RATE / 2 - 200:
            out += a * np.sin(2 * np.pi * freq * h * t + h)
    return out


def _add(out: F64, start: int, x: F64) -> None:
    end = min(len(out), start + len(x))
    if end > start:
        out[start:end] += x[: end - start]


def _midi(note: float) -> float:
    return 440.0 * 2 ** ((note - 69) / 12)


def _coloured(rng: np.random.Generator, n: int, power: float) -> F64:
    """Noise whose power falls as 1 / f**power (0 white, 1 pink, 2 brown)."""
    size = _fft_size(n)
    spectrum = np.fft.rfft(rng.standard_normal(size))
    f = np.fft.rfftfreq(size, 1 / RATE)
    f[0] = f[1]
    return np.fft.irfft(spectrum / f ** (power / 2), size)[:n]


def _fft_size(n: int) -> int:
    return 1 << max(0, n - 1).bit_length()


# -- music -------------------------------------------------------------------------

_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)


def _music(rng: np.random.Generator, n: int) -> F64:
    beat = 60 / rng.uniform(70, 160)
    root = 48 + int(rng.integers(0, 12))
    scale = _MAJOR if rng.random() < 0.5 else _MINOR
    progression = rng.choice(7, size=4)
    chord_beats = int(rng.choice([2, 4]))
    pad = rng.uniform(0.3, 0.8) ** np.arange(int(rng.integers(2, 9)))
    lead = rng.uniform(0.2, 0.7) ** np.arange(int(rng.integers(2, 7)))
    out = np.zeros(n)

    def pitch(degree: int, base: int) -> float:
        octave, step = divmod(degree, 7)
        return _midi(base + 12 * octave + scale[step])

    # chords
    step = int(chord_beats * beat * RATE)
    for k, start in enumerate(range(0, n, step)):
        degree = int(progression[k % 4])
        voices = (0, 2, 4, 6) if rng.random() < 0.3 else (0, 2, 4)
        env = _envelope(step, rng.uniform(0.005, 0.15), rng.uniform(0.4, 3.0))
        for v in voices:
            _add(out, start, 0.25 * env * _harmonic(pitch(degree + v, root), step, pad))
    # melody: a random walk on the scale, eighths and quarters
    t, degree = 0, int(rng.integers(7, 14))
    while t < n:
        dur = int(beat * RATE * float(rng.choice([0.5, 0.5, 1.0, 1.5])))
        degree = int(np.clip(degree + rng.integers(-2, 3), 3, 20))
        if rng.random() > 0.15:  # some rests
            env = _envelope(dur, 0.005, rng.uniform(0.1, 0.5))
            _add(out, t, 0.35 * env * _harmonic(pitch(degree, root), dur, lead))
        t += dur
    # bass
    if rng.random() < 0.6:
        for k, start in enumerate(range(0, n, int(beat * RATE))):
            degree = int(progression[(k // chord_beats) % 4])
            env = _envelope(int(beat * RATE), 0.01, 0.3)
            f = pitch(degree, root - 12)
            _add(out, start, 0.3 * env * _harmonic(f, len(env), np.array([1.0, 0.5, 0.2])))
    # drums
    if rng.random() < 0.7:
        out += _drums(rng, n, beat)
    return _normalise(out, rng.uniform(0.3, 0.9))


def _drums(rng: np.random.Generator, n: int, beat: float) -> F64:
    out = np.zeros(n)
    kick_n = int(0.25 * RATE)
    t = np.arange(kick_n) / RATE
    kick = np.sin(2 * np.pi * np.cumsum(50 + 100 * np.exp(-t / 0.04)) / RATE) * np.exp(-t / 0.12)
    snare_n = int(0.2 * RATE)
    ts = np.arange(snare_n) / RATE
    snare = (rng.standard_normal(snare_n) * 0.6 + np.sin(2 * np.pi * 190 * ts)) * np.exp(-ts / 0.05)
    hat_n = int(0.05 * RATE)
    hat = np.diff(rng.standard_normal(hat_n + 1)) * 0.3 * np.exp(-np.arange(hat_n) / RATE / 0.01)
    pattern = rng.random(8) < 0.3  # extra kicks on some eighths
    for k, start in enumerate(range(0, n, int(beat * RATE / 2))):
        eighth = k % 8
        if eighth in (0, 4) or pattern[eighth]:
            _add(out, start, 0.6 * kick)
        if eighth in (2, 6):
            _add(out, start, 0.4 * snare)
        _add(out, start, 0.3 * hat)
    return out


# -- speech-like ---------------------------------------------------------------------

#: (F1, F2, F3) Hz of a few vowels (average adult values)
_VOWELS = (
    (730, 1090, 2440),
    (270, 2290, 3010),
    (530, 1840, 2480),
    (300, 870, 2240),
    (570, 840, 2410),
    (660, 1720, 2410),
    (440, 1020, 2240),
    (490, 1350, 1690),
)


def _formants(n: int, vowel: tuple[int, int, int]) -> F64:
    """The magnitude response of three resonances (bandwidths 80, 100, 150 Hz)
    with a falling tilt, on the rfft grid of ``n`` samples."""
    f = np.fft.rfftfreq(n, 1 / RATE)
    h = np.zeros_like(f)
    for (fk, bk), gain in zip(
        zip(vowel, (80, 100, 150), strict=True), (1.0, 0.7, 0.4), strict=True
    ):
        h += gain / (1 + ((f - fk) / bk) ** 2)
    return h / (1 + f / 1000)


def _speech(rng: np.random.Generator, n: int) -> F64:
    out = np.zeros(n)
    f0 = rng.uniform(90, 240)
    rate = rng.uniform(3, 7)  # syllables a second
    t = int(rng.uniform(0, 0.5) * RATE)
    while t < n:
        phrase_start = t
        phrase_end = t + int(rng.uniform(1.5, 4.0) * RATE)
        while t < min(phrase_end, n):
            dur = int(rng.uniform(0.6, 1.4) / rate * RATE)
            vowel = _VOWELS[int(rng.integers(len(_VOWELS)))]
            # pitch: the phrase's declination, a rise or fall per syllable, jitter
            contour = f0 * (1 - 0.15 * (t - phrase_start) / (phrase_end - phrase_start))
            glide = np.linspace(1.0, rng.uniform(0.85, 1.15), dur)
            freq = contour * glide * (1 + 0.01 * rng.standard_normal(dur))
            phase = np.cumsum(freq) / RATE
            pulses = np.diff(np.floor(phase), prepend=0.0)  # one impulse per period
            size = _fft_size(dur)
            voiced = np.fft.irfft(np.fft.rfft(pulses, size) * _formants(size, vowel), size)[:dur]
            syllable = voiced * np.hanning(dur)
            if rng.random() < 0.4:  # a fricative onset
                m = int(rng.uniform(0.02, 0.06) * RATE)
                hiss = np.diff(rng.standard_normal(m + 1)) * np.hanning(m) * 0.02
                syllable[:m] += hiss
            _add(out, t, syllable)
            t += dur
        t += int(rng.uniform(0.2, 0.8) * RATE)  # a pause between phrases
    return _normalise(out, rng.uniform(0.3, 0.9))


# -- noise ----------------------------------------------------------------------------


def _noise(rng: np.random.Generator, n: int) -> F64:
    x = _coloured(rng, n, float(rng.choice([0.0, 1.0, 2.0])))
    style = int(rng.integers(3))
    t = np.arange(n) / RATE
    if style == 1:  # slowly modulated
        x *= 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.1, 2.0) * t)
    elif style == 2:  # bursts
        gate = np.repeat(rng.random(n // 2205 + 1) < 0.5, 2205)[:n]
        x *= 0.1 + gate
    return _normalise(x, rng.uniform(0.2, 0.9))


# -- silence and near silence -------------------------------------------------------------


def _db(level: float) -> float:
    return float(10 ** (level / 20))


def _quiet(rng: np.random.Generator, n: int) -> F64:
    style = int(rng.integers(6))
    t = np.arange(n) / RATE
    if style == 0:  # digital silence
        return np.zeros(n)
    if style == 1:  # dither: about one 16-bit step
        return rng.standard_normal(n) / 32768
    if style == 2:  # a noise floor, -65..-50 dBFS RMS
        x = _coloured(rng, n, 1.0)
        return x / np.sqrt(np.mean(x**2)) * _db(rng.uniform(-65, -50))
    if style == 3:  # mains hum and its harmonics, -60..-45 dBFS
        f = float(rng.choice([50.0, 60.0]))
        x = sum(np.sin(2 * np.pi * f * h * t) / h for h in (1, 2, 3, 5))
        return _normalise(np.asarray(x), _db(rng.uniform(-60, -45)))
    if style == 4:  # rare clicks over near silence
        x = rng.standard_normal(n) * _db(-75)
        for at in rng.integers(0, n, size=int(rng.integers(2, 10))):
            _add(x, int(at), np.hanning(64) * _db(rng.uniform(-30, -10)))
        return x
    return _normalise(_music(rng, n), _db(rng.uniform(-50, -40)))  # faint music


# -- tones -------------------------------------------------------------------------------

_KEYPAD = ((697, 1209), (697, 1336), (770, 1209), (770, 1477), (852, 1336), (941, 1336))


def _tone(rng: np.random.Generator, n: int) -> F64:
    style = int(rng.integers(7))
    t = np.arange(n) / RATE
    f = float(rng.uniform(100, 2000))
    if style == 0:  # a held sine
        x = np.sin(2 * np.pi * f * t)
    elif style == 1:  # a square wave
        x = np.sign(np.sin(2 * np.pi * f / 4 * t)) * 0.5
    elif style == 2:  # an organ chord, held
        x = sum(
            _harmonic(_midi(48 + int(rng.integers(12)) + s), n, np.array([1, 0.5, 0.3]))
            for s in (0, 4, 7)
        )
    elif style == 3:  # keypad beeps
        x = np.zeros(n)
        step = int(rng.uniform(0.15, 0.4) * RATE)
        for start in range(0, n, step):
            lo, hi = _KEYPAD[int(rng.integers(len(_KEYPAD)))]
            m = step * 2 // 3
            tt = np.arange(m) / RATE
            _add(x, start, np.sin(2 * np.pi * lo * tt) + np.sin(2 * np.pi * hi * tt))
    elif style == 4:  # a dial tone (two frequencies), or a busy cadence of one
        lo, hi = rng.uniform(300, 700, size=2)
        x = np.sin(2 * np.pi * lo * t) + np.sin(2 * np.pi * hi * t)
        if rng.random() < 0.5:
            period = rng.uniform(0.4, 1.5)
            x *= (t % period) < period * rng.uniform(0.3, 0.7)
    elif style == 5:  # a sweep, linear or logarithmic
        lo, hi = sorted(rng.uniform(60, 4000, size=2))
        linear = rng.random() < 0.5
        freq = lo + (hi - lo) * t / t[-1] if linear else lo * (hi / lo) ** (t / t[-1])
        x = np.sin(2 * np.pi * np.cumsum(freq) / RATE)
    else:  # a siren
        freq = f * (1 + 0.3 * np.sin(2 * np.pi * rng.uniform(0.2, 2) * t))
        x = np.sin(2 * np.pi * np.cumsum(freq) / RATE)
    return _normalise(np.asarray(x, dtype=np.float64), rng.uniform(0.2, 0.8))


_RENDER = {"music": _music, "speech": _speech, "noise": _noise, "quiet": _quiet, "tone": _tone}


# -- fingerprinting and querying (the test and the benchmark) --------------------------


U32 = npt.NDArray[np.uint32]


def fingerprint_corpus(
    directory: Path, n: int = 240, *, seed: int = 0
) -> tuple[dict[str, U32], dict[str, str]]:
    """Each track written as a WAV file and fingerprinted by
    ``fingerprint_file``: (name -> sub-fingerprints, name -> the one-line
    reason a track was refused: silence only)."""
    from node.errors import ValidationError
    from node.media.audio import fingerprint_file

    fps: dict[str, U32] = {}
    refused: dict[str, str] = {}
    for spec, path in tracks(directory, n, seed=seed):
        try:
            fps[spec.name] = np.asarray(fingerprint_file(path).values, dtype=np.uint32)
        except ValidationError as exc:
            refused[spec.name] = str(exc).split(": ", 1)[1]
        path.unlink()
    return fps, refused


@dataclass(frozen=True, slots=True)
class Outcome:
    """Every fingerprint asked of an index holding all of them."""

    queries: int
    scored: int  # (query, banked track) pairs the index scored
    matched: dict[str, tuple[str, ...]]  # query -> the tracks it matched
    best_other: dict[str, tuple[float, float]]  # query -> best (similarity, aligned s) of others
    false_matches: tuple[tuple[str, str, float, float], ...]  # query, track, similarity, s

    @property
    def unmatched(self) -> tuple[str, ...]:
        """Queries that matched nothing, not even themselves."""
        return tuple(q for q, got in self.matched.items() if not got)


def bank(fps: dict[str, U32]) -> AudioIndex:
    """An :class:`AudioIndex` holding every fingerprint, each a track named as its key."""
    from node.match.audio_index import AudioIndex

    index = AudioIndex()
    for name, values in fps.items():
        index.add(name, 0, values)
    return index


def query_all(index: AudioIndex, fps: dict[str, U32]) -> Outcome:
    """Ask ``index`` (default thresholds) of every fingerprint in ``fps``,
    candidates included; a match of any track but the query's own name is
    a false match."""
    scored = 0
    matched: dict[str, tuple[str, ...]] = {}
    best: dict[str, tuple[float, float]] = {}
    false: list[tuple[str, str, float, float]] = []
    for name, values in fps.items():
        found = index.search(values, matches_only=False)
        scored += len(found)
        matched[name] = tuple(str(m.track) for m in found if m.is_match)
        others = [m for m in found if m.track != name]
        if others:
            top = max(others, key=lambda m: m.similarity)
            best[name] = (top.similarity, top.aligned_s)
        false += [(name, str(m.track), m.similarity, m.aligned_s) for m in others if m.is_match]
    return Outcome(len(fps), scored, matched, best, tuple(false))


def distinct_per_item(values: U32) -> float:
    return len(np.unique(values)) / len(values) if len(values) else 0.0
