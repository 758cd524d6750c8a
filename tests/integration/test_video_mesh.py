"""A video banked at one end of a real three-node line is matched at the
other end from a copy that is re-encoded, trimmed and mirrored at once (made
here with PyAV), through the CLI as a member would: `ccnode submit --file`
then `ccnode match VIDEO --dir`. Relabelling or
retracting the video (through any one segment's id) acts on every segment;
once retracted, the copy stops matching everywhere."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from node.cli import main
from node.config import NodeConfig
from tests.helpers import LoopThread, eventually, line_of_three, running_nodes

pytestmark = [pytest.mark.integration, pytest.mark.slow]

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "vpdq"
GOV, P1, P2 = "gov.example/ct", "platform-one.example", "platform-two.example"


def _line(tmp_path: Path) -> list[NodeConfig]:
    return line_of_three(tmp_path, GOV, P1, P2)


def reupload(src: Path, dst: Path, start_s: float, end_s: float) -> None:
    """Trim to [start_s, end_s), mirror left-right and re-encode at another
    quality and size, as a re-uploader would."""
    import av
    import numpy as np

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(25))
        stream.width, stream.height = 288, 160
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "34"}
        for frame in inp.decode(video=0):
            t = float(frame.time or 0.0)
            if not start_s <= t < end_s:
                continue
            rgb = np.ascontiguousarray(frame.to_ndarray(format="rgb24")[:, ::-1])
            new = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(288, 160)
            for packet in stream.encode(new):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def _json(capsys: pytest.CaptureFixture[str]) -> Any:
    return json.loads(capsys.readouterr().out)


def test_a_video_banked_at_one_end_matches_an_altered_copy_at_the_other(
    tmp_path: Path, loop: LoopThread, capsys: pytest.CaptureFixture[str]
) -> None:
    original = VECTORS / "a.mp4"
    if not original.exists():
        pytest.skip(f"vPDQ vectors not found at {VECTORS}")
    copy = tmp_path / "copy.mp4"
    reupload(original, copy, 2.0, 9.0)
    configs = _line(tmp_path)
    with running_nodes(loop, configs) as nodes:
        gov_dir, far_dir = str(configs[0].dir), str(configs[2].dir)
        # 4-s segments, so that the 12-s video is three entries
        submit = ["submit", gov_dir, "--file", str(original), "--segment-seconds", "4"]
        assert main([*submit, "--label", "type:video", "--json"]) == 0
        added = _json(capsys)
        assert [d["outcome"] for d in added] == ["accepted"] * 3
        entries = [bytes.fromhex(d["entry_id"]) for d in added]
        eventually(
            lambda: (
                all(nodes[2].store.get(e) is not None for e in entries)
                and nodes[2].app.frames.index.video_segments(entries[0]) == tuple(entries)
            ),
            what="the far node holds and indexes every segment",
        )

        assert (
            main(["match", str(copy), str(VECTORS / "unrelated-b.mp4"), "--dir", far_dir, "--json"])
            == 0
        )
        copy_doc, unrelated_doc = _json(capsys)
        (v,) = copy_doc["videos"]
        assert v["is_match"] and v["mirrored"]
        assert v["match"]["origin"] == GOV and v["match"]["labels"] == ["type:video"]
        assert v["segments"] == [e.hex() for e in entries]
        lo, hi = v["banked_range_ms"]
        assert 1_500 <= lo <= 3_000 and 8_000 <= hi <= 9_500  # the trimmed stretch of the original
        assert unrelated_doc["videos"] == []

        # the human form names the banked video, its submitter and the ranges
        assert main(["match", str(copy), "--dir", far_dir]) == 0
        text = capsys.readouterr().out
        assert f"{copy}: 1 video match\n" in text
        assert f"by {GOV} (government, NZ): upload 0:00-0:0" in text
        assert "~ banked 0:0" in text and "mirrored" in text

        # relabelling the video through any one of its segments relabels them all
        relabel = ["feedback", "relabel", gov_dir, "--entry", entries[1].hex()]
        assert main([*relabel, "--label", "type:livestream"]) == 0
        assert capsys.readouterr().out.count("relabel ") == 3

        def relabelled() -> bool:
            assert main(["match", str(copy), "--dir", far_dir, "--json"]) == 0
            (v,) = _json(capsys)[0]["videos"]
            return bool(v["match"]["current_labels"] == ["type:livestream"])

        eventually(relabelled, what="the far node answers with the new labels")

        # retracting the video by any one of its segments retracts them all
        assert main(["submit", gov_dir, "--retract", entries[-1].hex(), "--json"]) == 0
        assert [d["outcome"] for d in _json(capsys)] == ["accepted"] * 3
        eventually(
            lambda: all(nodes[2].store.get(e).retracted_by for e in entries),  # type: ignore[union-attr]
            what="the far node has every retraction",
        )
        assert main(["match", str(copy), "--dir", far_dir, "--json"]) == 0
        assert _json(capsys)[0]["videos"] == []
