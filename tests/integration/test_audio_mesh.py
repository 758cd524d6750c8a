"""A soundtrack banked at one end of a real three-node line matches, at the
other end, a copy whose picture no visual hash recognises: unrelated
generated footage carrying the banked video's soundtrack (both videos made
here with PyAV from the vectors), through the CLI as a member would:
`ccnode submit --file VIDEO` at the government's node, `ccnode match VIDEO
--dir` at the far platform's. Visual evidence is absent, audio evidence
present, and the answer says the audio fired; retracting the video stops
the match everywhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from node.cli import main
from tests.audio_files import dub, pictures
from tests.helpers import LoopThread, eventually, line_of_three, running_nodes
from tests.videos import synthetic

pytestmark = [pytest.mark.integration, pytest.mark.slow]

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors"
GOV, P1, P2 = "gov.example/ct", "platform-one.example", "platform-two.example"


def soundtrack_vectors() -> Path:
    d = VECTORS / "chromaprint"
    if not (d / "a.m4a").exists() or not (VECTORS / "vpdq" / "a.mp4").exists():
        pytest.skip(f"Chromaprint and vPDQ vectors not found at {VECTORS}")
    return d


def banked_video(dst: Path) -> Path:
    """The banked video: the vPDQ vectors' `a` picture with the Chromaprint
    vectors' `a` soundtrack (12 s of picture, 20 s of sound)."""
    return dub(dst, pictures(VECTORS / "vpdq" / "a.mp4"), soundtrack_vectors() / "a.m4a")


def new_picture(dst: Path, soundtrack: Path, seed: int) -> Path:
    """``soundtrack`` under 20 s of unrelated generated footage."""
    return dub(dst, synthetic(seed, seconds=20, texture=20), soundtrack)


def _json(capsys: pytest.CaptureFixture[str]) -> Any:
    return json.loads(capsys.readouterr().out)


def test_a_soundtrack_banked_at_one_end_matches_a_visually_unrecognisable_copy_at_the_other(
    tmp_path: Path, loop: LoopThread, capsys: pytest.CaptureFixture[str]
) -> None:
    sounds = soundtrack_vectors()
    banked = banked_video(tmp_path / "banked.mp4")
    copy = new_picture(tmp_path / "copy.mp4", sounds / "a.m4a", seed=101)
    other = new_picture(tmp_path / "other.mp4", sounds / "unrelated-b.m4a", seed=102)
    configs = line_of_three(tmp_path, GOV, P1, P2)
    with running_nodes(loop, configs) as nodes:
        gov_dir, far_dir = str(configs[0].dir), str(configs[2].dir)
        submit = ["submit", gov_dir, "--file", str(banked), "--segment-seconds", "4"]
        assert main([*submit, "--label", "type:video", "--json"]) == 0
        entries = [bytes.fromhex(d["entry_id"]) for d in _json(capsys)]
        kinds = [nodes[0].store.get(e).entry.body.algorithm for e in entries]  # type: ignore[union-attr]
        assert kinds == ["VPDQ"] * 3 + ["CHROMAPRINT"]  # 12 s of frames, 20 s of sound
        sound = entries[3]

        def far_holds_all() -> bool:
            held = [nodes[2].store.get(e) for e in entries]
            return all(held) and nodes[2].app.video_segments(held[0].entry) == tuple(entries)  # type: ignore[union-attr]

        eventually(far_holds_all, what="the far node holds and indexes frames and soundtrack")

        files = [str(copy), str(other), str(banked)]
        assert main(["match", *files, "--dir", far_dir, "--json"]) == 0
        copy_doc, other_doc, banked_doc = _json(capsys)
        # the copy: no visual evidence, the soundtrack matches, audio fired
        assert copy_doc["videos"] == []
        (a,) = copy_doc["audio"]
        assert a["is_match"] and a["similarity"] >= 0.95 and a["aligned_s"] >= 15
        assert a["segments"] == [sound.hex()]
        assert a["match"]["origin"] == GOV and a["match"]["labels"] == ["type:video"]
        assert copy_doc["fired"] == ["audio"]
        # other footage with other sound: nothing
        assert other_doc["videos"] == [] and other_doc["audio"] == []
        assert other_doc["fired"] == []
        # the banked video itself: both kinds fire at the far end, so the
        # copy's missing visual evidence is the picture's doing
        assert banked_doc["fired"] == ["visual", "audio"]

        assert main(["match", str(copy), "--dir", far_dir]) == 0
        text = capsys.readouterr().out
        assert f"{copy}: 1 audio match" in text
        assert f"{copy}: fired: audio\n" in text

        # retracting the video (by its soundtrack segment) stops the match everywhere
        assert main(["submit", gov_dir, "--retract", sound.hex(), "--json"]) == 0
        assert [d["outcome"] for d in _json(capsys)] == ["accepted"] * 4
        eventually(
            lambda: all(nodes[2].store.get(e).retracted_by for e in entries),  # type: ignore[union-attr]
            what="the far node has every retraction",
        )
        assert main(["match", str(copy), "--dir", far_dir, "--json"]) == 0
        (doc,) = _json(capsys)
        assert doc["audio"] == [] and doc["fired"] == []
