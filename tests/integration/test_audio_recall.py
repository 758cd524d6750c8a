"""Recall on one real node for the case the soundtrack exists for: a video
banked with `ccnode submit --file`, then copies whose picture is replaced
by unrelated generated footage and whose sound is each edited copy of the
banked soundtrack in the Chromaprint vectors (re-encoded, quieter, noisy,
a 10-s clip, phone-band, room echo). Every copy matches on audio alone;
other footage with `unrelated-b`'s sound matches nothing. The figures:
scripts/bench/audio_false_matches.py, docs/benchmarks.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from node.server import Node
from tests.audio_files import COPIES
from tests.integration import test_audio_match
from tests.integration.test_audio_mesh import banked_video, new_picture, soundtrack_vectors

pytestmark = [pytest.mark.integration, pytest.mark.slow]

node = test_audio_match.node  # the fixture: one real node, GOV its member

SOUNDTRACKS = ("a.m4a", *COPIES)  # a's own soundtrack re-encoded, then each edited copy


def test_every_soundtrack_copy_under_unrelated_footage_matches_on_audio_alone(
    node: Node, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from node.cli import main

    sounds = soundtrack_vectors()
    banked = banked_video(tmp_path / "banked.mp4")
    d = str(node.config.dir)
    assert main(["submit", d, "--file", str(banked), "--json"]) == 0
    added = [bytes.fromhex(x["entry_id"]) for x in json.loads(capsys.readouterr().out)]
    sound = [e for e in added if node.store.get(e).entry.body.algorithm == "CHROMAPRINT"]  # type: ignore[union-attr]
    assert len(sound) == 1
    files = [
        new_picture(tmp_path / f"copy-{i}.mp4", sounds / name, seed=200 + i)
        for i, name in enumerate((*SOUNDTRACKS, "unrelated-b.m4a"))
    ]
    assert main(["match", *map(str, files), "--dir", d, "--json"]) == 0
    docs = json.loads(capsys.readouterr().out)
    for name, doc in zip(SOUNDTRACKS, docs, strict=False):
        assert doc["videos"] == [], name  # the picture is unrelated
        (a,) = doc["audio"]
        assert a["is_match"] and a["segments"] == [sound[0].hex()], name
        assert a["similarity"] >= 0.85 and a["aligned_s"] >= 7, name
        assert doc["fired"] == ["audio"], name
    clip = docs[SOUNDTRACKS.index("a-clip-4.3s-to-14.3s.m4a")]["audio"][0]
    assert 4_000 <= clip["banked_range_ms"][0] <= 4_700  # the clip starts 4.3 s in
    unrelated = docs[-1]
    assert unrelated["videos"] == [] and unrelated["audio"] == [] and unrelated["fired"] == []
