"""``ccnode hash VIDEO``: the vPDQ summary, ``--json`` with the frames, bad videos."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from node.cli import main
from node.media.video import reference_vpdq
from tests.videos import synthetic, write


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("cli")
    return write(d / "clip.mp4", synthetic(3, seconds=2.0, texture=20.0))


def test_hash_prints_the_vpdq_summary(clip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref = reference_vpdq(clip)
    assert main(["hash", str(clip)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{clip}  pdq -")  # not an image: no image PDQ
    bands = {"0-49": 0, "50-69": 0, "70-89": 0, "90-100": 0}
    for f in ref.frames:
        band = next(k for k in bands if int(k.split("-")[0]) <= f.quality <= int(k.split("-")[1]))
        bands[band] += 1
    text = "  ".join(f"{k}: {n}" for k, n in bands.items())
    assert out[1] == "  note: no audio fingerprint: no audio stream"
    assert out[2] == (
        f"  vpdq 2 frames (1 a second) of 50 over 2.00 s, 25 fps, 160x96; quality {text} "
        "(frames below 50 are not matched)"
    )


def test_hash_json_gives_every_frame(clip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hash", str(clip), "--json", "--vpdq-seconds", "0"]) == 0
    (doc,) = json.loads(capsys.readouterr().out)
    v = doc["vpdq"]
    ref = reference_vpdq(clip, seconds_per_hash=0)
    assert (v["seconds_per_hash"], v["fps"], v["duration_ms"]) == (0.0, 25.0, 2000)
    assert (v["width"], v["height"], v["frames_decoded"]) == (160, 96, 50)
    assert v["frames"] == [
        {"frame": n, "ts_ms": f.ts_ms, "pdq": f.pdq.hex(), "quality": f.quality}
        for n, f in zip(ref.frame_numbers, ref.frames, strict=True)
    ]
    assert [f["frame"] for f in v["frames"]] == list(range(50))
    assert sum(v["quality_histogram"].values()) == 50
    assert doc["video_md5"] == doc["md5"]


def test_hash_reports_a_bad_video_and_goes_on(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video\n")
    other = tmp_path / "notes.txt"
    other.write_text("any file has digests\n")
    assert main(["hash", str(bad), str(clip), str(other)]) == 2
    out, err = capsys.readouterr()
    assert err == (
        f"ccnode: error: {bad}: not a video (MP4/MOV, WebM/Matroska, AVI, FLV or MPEG-TS "
        "expected)\n"
    )
    assert f"{clip}  pdq" in out and "  vpdq 2 frames" in out and f"{other}  pdq" in out


def test_hash_refuses_a_negative_vpdq_interval(
    clip: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["hash", str(clip), "--vpdq-seconds", "-1"]) == 2
    assert capsys.readouterr().err.strip() == "ccnode: error: --vpdq-seconds must be >= 0: got -1.0"


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [
        ("--video-max-seconds", "1", "video lasts 2 s: over the limit of 1 s"),
        ("--video-max-frames", "30", "video has more than 30 frames: over the limit"),
        ("--video-max-pixels", "1000", "over the limit of 1000"),
    ],
)
def test_video_limits_are_options(
    clip: Path, option: str, value: str, error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["hash", str(clip), option, value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"ccnode: error: {clip}: ")
    assert error in err[0]


def test_a_video_limit_must_be_positive(clip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hash", str(clip), "--video-max-frames", "0"]) == 2
    assert capsys.readouterr().err.strip() == (
        "ccnode: error: video limit max_frames must be positive"
    )


@pytest.mark.parametrize("command", ["submit", "match", "watch"])
def test_every_command_that_decodes_video_takes_the_limits(command: str) -> None:
    from node.cli import build_parser
    from node.cli.video_limits import limits_of

    args = build_parser().parse_args(
        [
            command,
            "x",
            "--video-max-seconds",
            "60",
            "--video-max-frames",
            "900",
            "--video-max-pixels",
            "2073600",
        ]
    )
    limits = limits_of(args)
    assert (limits.max_duration_s, limits.max_frames, limits.max_pixels) == (60.0, 900, 2073600)
