"""node.media.video: bad files, limits, safety, and the batched PDQ.

Every file here is real: made by PyAV in a temp dir, then damaged the way
uploads are (cut short, overwritten, stripped of their video).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.errors import ValidationError
from node.media.image import _bits_to_bytes
from node.media.pdq64 import luma_from_rgb, pdq_64
from node.media.video import (
    DEFAULT_LIMITS,
    VideoLimits,
    bank_frames,
    detect_borders,
    query_frames,
    reference_vpdq,
)
from tests.videos import synthetic, write

PDQ_VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "pdq"


def _silence(stream: object, n: int = 10) -> list[object]:
    import av

    frames = []
    for i in range(n):
        fr = av.AudioFrame.from_ndarray(
            np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
        )
        fr.sample_rate = 44100
        fr.pts = i * 1024
        frames.append(fr)
    return frames


def _audio_into(out: object, stream: object) -> None:
    for fr in _silence(stream):
        for p in stream.encode(fr):  # type: ignore[attr-defined]
            out.mux(p)  # type: ignore[attr-defined]
    for p in stream.encode():  # type: ignore[attr-defined]
        out.mux(p)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import av

    d = tmp_path_factory.mktemp("videos")
    f: dict[str, Path] = {}
    f["good"] = write(d / "good.mp4", synthetic(1, seconds=2))
    fast = write(
        d / "fast.mp4", synthetic(1, seconds=2), container_options={"movflags": "faststart"}
    )
    data = fast.read_bytes()
    with av.open(str(fast)) as c:
        packets = [(p.pos, p.size) for p in c.demux(video=0) if p.size]
    (d / "text.mp4").write_text("hello, not a video\n")
    f["text"] = d / "text.mp4"
    (d / "empty.mp4").write_bytes(b"")
    f["empty"] = d / "empty.mp4"
    f["image"] = d / "still.png"
    write_png = np.zeros((32, 32, 3), np.uint8)
    from PIL import Image

    Image.fromarray(write_png).save(f["image"])
    # an FFmpeg concat script and an HLS playlist, both pointing at a good file
    f["concat"] = d / "list.txt"
    f["concat"].write_text(f"ffconcat version 1.0\nfile '{f['good']}'\n")
    f["playlist"] = d / "list.m3u8"
    f["playlist"].write_text(
        f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nfile://{f['good']}\n#EXT-X-ENDLIST\n"
    )
    # cut in half: the index (moov) at the end of the file is gone
    f["cut"] = d / "cut.mp4"
    f["cut"].write_bytes(f["good"].read_bytes()[: len(f["good"].read_bytes()) // 2])
    # faststart, cut halfway through the 21st frame's data
    f["truncated"] = d / "truncated.mp4"
    pos, size = packets[20]
    f["truncated"].write_bytes(data[: pos + size // 2])
    # the 26th frame's data overwritten with garbage
    corrupt = bytearray(data)
    pos, size = packets[25]
    corrupt[pos : pos + size] = (bytes(range(256)) * (size // 256 + 1))[:size]
    f["corrupt"] = d / "corrupt.mp4"
    f["corrupt"].write_bytes(bytes(corrupt))
    # sound only
    f["audio"] = d / "audio.m4a"
    with av.open(str(f["audio"]), "w") as out:
        _audio_into(out, out.add_stream("aac", rate=44100))
    # a video track with no frames (Matroska keeps the empty track)
    f["no_frames"] = d / "no_frames.mkv"
    with av.open(str(f["no_frames"]), "w") as out:
        v = out.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        _audio_into(out, out.add_stream("aac", rate=44100))
    f["wide"] = write(d / "wide.mp4", (np.full((16, 8200, 3), i * 50, np.uint8) for i in range(3)))
    # two frames five hours apart
    f["long"] = d / "long.mp4"
    with av.open(str(f["long"]), "w") as out:
        v = out.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        for i, pts in enumerate([0, 25 * 5 * 3600]):
            frame = av.VideoFrame.from_ndarray(
                np.full((48, 64, 3), i * 99, np.uint8), format="rgb24"
            )
            frame.pts, frame.time_base = pts, Fraction(1, 25)
            for p in v.encode(frame):
                out.mux(p)
        for p in v.encode():
            out.mux(p)
    f["missing"] = d / "missing.mp4"
    f["dir"] = d / "a-dir.mp4"
    f["dir"].mkdir()
    return f


MSG_NOT_VIDEO = "not a video (MP4/MOV, WebM/Matroska, AVI, FLV or MPEG-TS expected)"
DAMAGED = "video data is damaged or truncated: decoding stopped after"
BAD_FILES = [
    ("text", DEFAULT_LIMITS, MSG_NOT_VIDEO),
    ("image", DEFAULT_LIMITS, MSG_NOT_VIDEO),
    ("concat", DEFAULT_LIMITS, MSG_NOT_VIDEO),
    ("playlist", DEFAULT_LIMITS, MSG_NOT_VIDEO),
    ("empty", DEFAULT_LIMITS, "file is empty"),
    ("missing", DEFAULT_LIMITS, "cannot read file: No such file or directory"),
    ("dir", DEFAULT_LIMITS, "not a regular file"),
    ("cut", DEFAULT_LIMITS, "cannot read this MP4/MOV file: truncated or damaged"),
    (
        "truncated",
        DEFAULT_LIMITS,
        f"{DAMAGED} 20 frames (Invalid data found when processing input)",
    ),
    ("corrupt", DEFAULT_LIMITS, f"{DAMAGED} 25 frames (Invalid data found when processing input)"),
    ("audio", DEFAULT_LIMITS, "has no video stream"),
    ("no_frames", DEFAULT_LIMITS, "video stream has no frames"),
    ("wide", DEFAULT_LIMITS, "video is 8200x16: over the limit of 8192 pixels a side"),
    ("long", DEFAULT_LIMITS, "video lasts 18000 s: over the limit of 10800 s"),
    (
        "good",
        VideoLimits(max_pixels=10_000),
        "video is 160x96 (15360 pixels a frame): over the limit of 10000",
    ),
    ("good", VideoLimits(max_frames=30), "video has more than 30 frames: over the limit"),
    ("good", VideoLimits(max_duration_s=1), "video lasts 2 s: over the limit of 1 s"),
    ("good", VideoLimits(max_fps=24), "frame rate 25/s is over the limit of 24/s"),
]


@pytest.mark.parametrize(
    "hasher", [reference_vpdq, bank_frames, query_frames], ids=lambda f: f.__name__
)
@pytest.mark.parametrize(
    ("name", "limits", "message"), BAD_FILES, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD_FILES)]
)
def test_bad_files_get_one_exact_line(
    files: dict[str, Path], hasher: object, name: str, limits: VideoLimits, message: str
) -> None:
    path = files[name]
    with pytest.raises(ValidationError) as err:
        hasher(path, limits=limits)  # type: ignore[operator]
    assert str(err.value) == f"{path}: {message}"
    assert "\n" not in str(err.value)


def test_duration_limit_holds_when_the_header_does_not_say(files: dict[str, Path]) -> None:
    # Matroska written by a muxer that never seeks back carries no duration:
    # the limit is enforced on the frames as they come.
    limits = VideoLimits(max_duration_s=1)
    import av

    path = files["good"].with_name("streamed.mkv")
    with (
        av.open(str(files["good"])) as src,
        av.open(str(path), "w", format="matroska", options={"live": "1"}) as out,
    ):
        s = src.streams.video[0]
        o = out.add_stream_from_template(s)
        for packet in src.demux(s):
            if packet.dts is not None:
                packet.stream = o
                out.mux(packet)
    with pytest.raises(ValidationError) as err:
        reference_vpdq(path, limits=limits)
    assert str(err.value) in (
        f"{path}: video runs past the limit of 1 s",
        f"{path}: video lasts 2 s: over the limit of 1 s",
    )


def test_good_file_after_bad_ones_still_hashes(files: dict[str, Path]) -> None:
    for name in ("text", "corrupt", "truncated"):
        with pytest.raises(ValidationError):
            query_frames(files[name])
    h = reference_vpdq(files["good"])
    assert (h.frames_decoded, h.fps, h.duration_ms, h.width, h.height) == (50, 25.0, 2000, 160, 96)
    assert h.frame_numbers == (0, 25)
    assert [f.ts_ms for f in h.frames] == [0, 1000]


@pytest.mark.parametrize(
    "bad", [{"max_frames": 0}, {"max_pixels": -1}, {"max_duration_s": 0.0}, {"threads": -1}]
)
def test_limits_must_be_sane(bad: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        VideoLimits(**bad)  # type: ignore[arg-type]


# ---------------------------------------------------------- the batched PDQ


def _pdqhash(rgb: np.ndarray) -> tuple[bytes, int]:
    import pdqhash

    bits, quality = pdqhash.compute(np.ascontiguousarray(rgb))
    return _bits_to_bytes(bits), int(quality)


def _image(seed: int) -> np.ndarray:
    """A 64x64 RGB image of seeded content: smooth fields, blocks and noise."""
    rng = np.random.default_rng(seed)
    kind = seed % 3
    if kind == 0:
        img = rng.integers(0, 256, (64, 64, 3))
    elif kind == 1:
        img = np.cumsum(rng.integers(-20, 21, (64, 64, 3)), axis=int(rng.integers(0, 2))) + 128
    else:
        cells = int(rng.choice([2, 4, 8, 16]))
        img = rng.integers(0, 256, (64 // cells, 64 // cells, 3)).repeat(cells, 0).repeat(cells, 1)
        img = img + rng.normal(0, 8, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


seeds = st.integers(0, 2**32 - 1)


@settings(max_examples=60, deadline=None)
@given(st.lists(seeds, min_size=1, max_size=4))
def test_pdq_64_is_pdqhash_bit_for_bit(image_seeds: list[int]) -> None:
    images = [_image(s) for s in image_seeds]
    batch = np.stack(images)
    hashes, quality, mirrored = pdq_64(luma_from_rgb(batch), mirror=True)
    for i, img in enumerate(images):
        assert (hashes[i].tobytes(), int(quality[i])) == _pdqhash(img)
        assert mirrored[i].tobytes() == _pdqhash(img[:, ::-1])[0]


@settings(max_examples=30, deadline=None)
@given(st.lists(seeds, min_size=1, max_size=4))
def test_pdq_64_of_grey_is_pdqhash_of_grey_rgb(image_seeds: list[int]) -> None:
    grey = np.stack([_image(s)[..., 1] for s in image_seeds])
    hashes, quality, _ = pdq_64(grey)
    for i, g in enumerate(grey):
        assert (hashes[i].tobytes(), int(quality[i])) == _pdqhash(np.repeat(g[..., None], 3, 2))


def test_pdq_64_refuses_other_shapes() -> None:
    with pytest.raises(ValueError, match=r"expected \(n, 64, 64\) luma"):
        pdq_64(np.zeros((2, 32, 64)))


# ------------------------------------------------------------------- borders


def test_borders_found_over_time_and_not_in_blank_frames() -> None:
    rng = np.random.default_rng(0)
    content = rng.integers(0, 256, (10, 128, 128)).astype(np.uint8)
    screen = np.full_like(content, 40)  # a screen recording: the picture inside a grey frame
    screen[:, 16:-16, 10:-10] = content[:, 16:-16, 10:-10]
    assert detect_borders(screen) == (16, 16, 10, 10)
    letterbox = content.copy()
    letterbox[:, :16] = 0
    letterbox[:, -16:] = 0
    letterbox[3, 16:40] = 0  # a dark scene at the top in one frame does not widen the bar
    blank = np.zeros((2, 128, 128), np.uint8)  # fades say nothing
    assert detect_borders(np.concatenate([letterbox, blank])) == (16, 16, 0, 0)
    assert detect_borders(blank) is None
    assert detect_borders(content) is None


def test_a_letterboxed_upload_is_queried_trimmed_too(tmp_path: Path) -> None:
    from tests.videos import edited, letterbox

    clip = dict(width=128, height=72, seconds=7.0, texture=25.0, style=3)  # past the window
    plain = write(tmp_path / "plain.mp4", synthetic(5, **clip))  # type: ignore[arg-type]
    boxed = write(
        tmp_path / "boxed.mp4",
        edited(synthetic(5, **clip), lambda f: letterbox(f, 1.0)),  # type: ignore[arg-type]
    )
    h, query = query_frames(boxed)
    assert (h.width, h.height) == (128, 128)
    assert h.borders is not None and h.borders.left == h.borders.right == 0
    assert 26 <= h.borders.top <= 28 and 26 <= h.borders.bottom <= 28  # bars of 28 px
    assert {q.variant for q in query} == {0, 1, 2, 3}
    assert len(query) == 4 * len(h.frames)
    plain_h, plain_q = query_frames(plain)
    assert plain_h.borders is None and {q.variant for q in plain_q} == {0, 1}
    # the trimmed boxed frames are the plain frames, within PDQ's noise, both
    # inside the border window (numpy crop) and after it (FFmpeg crop)
    plain_at = {q.ts_ms: q.pdq for q in plain_q if q.variant == 0}
    early: list[int] = []
    late: list[int] = []
    for q in query:
        if q.variant == 2 and q.ts_ms in plain_at:
            d = (
                int.from_bytes(q.pdq, "big") ^ int.from_bytes(plain_at[q.ts_ms], "big")
            ).bit_count()
            (early if q.ts_ms < 5000 else late).append(d)
    print(
        f"trimmed vs plain: median {np.median(early)} bits in the window, {np.median(late)} after"
    )
    assert early and late
    assert np.median(early) <= 20 and np.median(late) <= 20
    bank = bank_frames(boxed)
    assert bank.borders == h.borders
