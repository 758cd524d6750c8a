"""Audio fingerprinting speed against PyAV decode-only time, same files, same run.

    python scripts/bench/audio_hash.py [--tracks 4] [--seconds 180] [--repeat 3]
                                       [--vectors | --no-vectors] [FILE ...]

Files: the Chromaprint vectors (../shared/vectors/chromaprint, when present),
TRACKS generated tracks of SECONDS each (stereo 44.1 kHz AAC in .m4a, a
seeded melody with noise, written to a temporary directory and removed
after), and any FILEs given. For each file, the best of REPEAT runs of:

- decode only (the baseline): PyAV demuxes and decodes every audio frame,
  nothing else;
- fingerprint: ``node.media.audio.fingerprint_file`` (decode, libswresample
  to 11025 Hz mono, FFT, chroma, classifiers);
- numpy stages alone: ``fingerprint_pcm`` on already converted samples.

Speeds are audio seconds per CPU second of this process (``x real time``).
BLAS and OpenMP are held to one thread so the figure is one core's. Goal:
fingerprinting >= 50x real time on one core.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import av
import numpy as np

from node.media.audio import (
    SAMPLE_RATE,
    AudioLimits,
    _decoded,
    _open,
    fingerprint_file,
    fingerprint_pcm,
)
from tests.audio_files import melody, write

VECTORS = ROOT.parent / "shared" / "vectors" / "chromaprint"


def decode_only(path: Path) -> float:
    """Decode every audio frame; return the audio's duration in seconds."""
    samples, rate = 0, 1
    with av.open(str(path)) as container:
        stream = container.streams.best("audio")
        assert stream is not None
        rate = stream.codec_context.sample_rate
        for frame in container.decode(stream):
            samples += frame.samples
    return samples / rate


def converted(path: Path) -> np.ndarray:
    with path.open("rb") as f, _open(path, f) as container:
        return np.concatenate(list(_decoded(path, container, AudioLimits())))


def best_cpu(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--tracks", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=180.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--vectors", action=argparse.BooleanOptionalAction, default=True)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="audio-bench-") as tmp:
        files = list(args.files)
        if args.vectors and VECTORS.is_dir():
            files += sorted(p for p in VECTORS.iterdir() if p.is_file())
        t0 = time.perf_counter()
        for i in range(args.tracks):
            files.append(
                write(Path(tmp) / f"track{i}.m4a", melody(args.seconds, channels=2, seed=100 + i))
            )
        if args.tracks:
            print(
                f"generated {args.tracks} tracks of {args.seconds:g} s "
                f"in {time.perf_counter() - t0:.1f} s"
            )
        print(
            f"PyAV {av.__version__}, numpy {np.__version__}, best of {args.repeat}, "
            "CPU time of one process"
        )
        print(
            f"{'file':28} {'audio s':>8} {'decode-only':>12} {'fingerprint':>12} "
            f"{'numpy part':>11} {'ratio':>6}"
        )
        total = {"audio": 0.0, "decode": 0.0, "fp": 0.0, "numpy": 0.0}
        for path in files:
            seconds = decode_only(path)
            dec = best_cpu(lambda p=path: decode_only(p), args.repeat)
            fp = best_cpu(lambda p=path: fingerprint_file(p), args.repeat)
            pcm = converted(path)
            num = best_cpu(lambda x=pcm: fingerprint_pcm(x), args.repeat)
            assert len(pcm) / SAMPLE_RATE > 0.99 * seconds
            total["audio"] += seconds
            total["decode"] += dec
            total["fp"] += fp
            total["numpy"] += num
            print(
                f"{path.name[:28]:28} {seconds:8.1f} {seconds / dec:10.0f}x {seconds / fp:10.0f}x "
                f"{seconds / num:9.0f}x {fp / dec:6.2f}"
            )
        a = total["audio"]
        print(
            f"{'all':28} {a:8.1f} {a / total['decode']:10.0f}x {a / total['fp']:10.0f}x "
            f"{a / total['numpy']:9.0f}x {total['fp'] / total['decode']:6.2f}"
        )
        print(
            f"fingerprinting: {a / total['fp']:.0f}x real time on one core "
            f"(goal >= 50x: {'met' if a / total['fp'] >= 50 else 'NOT met'}); "
            f"decode-only baseline {a / total['decode']:.0f}x; fingerprint costs "
            f"{total['fp'] / total['decode']:.2f}x decoding"
        )


if __name__ == "__main__":
    main()
