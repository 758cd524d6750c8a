"""The live segmenter: a fixed grid of stream time, final at the end, exact errors."""

from __future__ import annotations

import pytest

from node.core.chromaprint import MAX_ITEMS, item_ms, items_at
from node.core.vpdq import VideoFrame
from node.errors import ValidationError
from node.media.live import AudioSegmenter, Segmenter, check_segment_seconds

VID = bytes(range(16))


def _frame(ts: int, n: int = 0) -> VideoFrame:
    return VideoFrame(bytes([n % 256]) * 32, 90, ts)


def _feed(seg: Segmenter, stamps: list[int]) -> list[tuple[int, int, int, int, bool]]:
    out = []
    for i, ts in enumerate(stamps):
        out += [
            (s.index, s.start_ms, s.duration_ms, len(s.frames), s.final)
            for s in seg.add(_frame(ts, i))
        ]
    return out


def test_segments_complete_on_the_grid_and_the_end_closes_the_last() -> None:
    seg = Segmenter(VID, 2000, fps_milli=25000)
    done = _feed(seg, [0, 400, 1000, 1999, 2000, 3000, 4100, 4200])
    assert done == [(0, 0, 2000, 4, False), (1, 2000, 2000, 2, False)]
    final = seg.finish(4600)
    assert final is not None
    assert (final.index, final.start_ms, final.duration_ms, len(final.frames), final.final) == (
        2,
        4000,
        600,
        2,
        True,
    )
    assert [f.ts_ms for f in final.frames] == [4100, 4200]
    assert seg.finish(5000) is None  # nothing pending


def test_a_gap_without_frames_skips_segment_numbers() -> None:
    seg = Segmenter(VID, 1000)
    assert _feed(seg, [0, 500, 3200]) == [(0, 0, 1000, 2, False)]


def test_an_offset_continues_the_video_clock() -> None:
    seg = Segmenter(VID, 2000, offset_ms=6000)  # resumed after 3 published segments
    assert _feed(seg, [0, 1500, 2100]) == [(3, 6000, 2000, 2, False)]
    final = seg.finish(2500)
    assert final is not None and (final.index, final.start_ms, final.end_ms) == (4, 8000, 8500)


def test_out_of_order_frames_are_refused() -> None:
    seg = Segmenter(VID, 2000)
    _feed(seg, [0, 800])
    with pytest.raises(ValidationError) as e:
        _feed(seg, [700])
    assert str(e.value) == "frame at 700 ms comes after one at 800 ms: timestamps out of order"


def test_a_segment_over_the_frame_cap_is_refused() -> None:
    seg = Segmenter(VID, 600_000)
    with pytest.raises(ValidationError) as e:
        _feed(seg, list(range(1025)))
    assert str(e.value) == (
        "segment 0 has more than 1024 frames in 600 s: use a shorter --segment-seconds"
    )


@pytest.mark.parametrize(("seconds", "ms"), [(1, 1000), (2.5, 2500), (600, 600_000)])
def test_segment_seconds(seconds: float, ms: int) -> None:
    assert check_segment_seconds(seconds) == ms


@pytest.mark.parametrize("seconds", [0, 0.5, 601])
def test_segment_seconds_out_of_range(seconds: float) -> None:
    with pytest.raises(ValidationError) as e:
        check_segment_seconds(seconds)
    assert str(e.value) == f"--segment-seconds {seconds:g}: expected 1..600"


def test_the_watch_window_keeps_the_newest_frames_whole() -> None:
    from node.cli import watch_cmds
    from node.cli.video_cmds import window_frames
    from node.match.video import QueryFrame

    cap = window_frames(0)
    # 4 variants a frame, 40 ms apart: more than one request may carry.
    frames = [QueryFrame(bytes(32), 90, 40 * (i // 4), i % 4) for i in range(cap + 10)]
    kept = watch_cmds._recent(frames, 40 * (cap // 4))
    assert len(kept) <= cap
    assert kept[0].variant == 0  # starts at a frame's first variant
    assert kept[-1] == frames[-1]  # the newest are kept
    old = [QueryFrame(bytes(32), 90, ts, 0) for ts in (0, 30_000, 61_000, 62_000)]
    assert [f.ts_ms for f in watch_cmds._recent(old, 62_000)] == [30_000, 61_000, 62_000]


# ------------------------------------------------ the soundtrack's segments


def _sound(seg: AudioSegmenter, values: list[int]) -> list[tuple[int, int, int, bool]]:
    return [(s.index, s.start_item, len(s.values), s.final) for s in seg.add(values)]


def test_audio_segments_lie_on_the_same_grid_of_stream_time() -> None:
    seg = AudioSegmenter(VID, 2000)
    # item k starts at k x 1365 / 11025 s: items 0..16 start before 2 s
    assert _sound(seg, list(range(17))) == []
    assert _sound(seg, [17]) == [(0, 0, 17, False)]
    assert _sound(seg, list(range(18, 40))) == [(1, 17, 16, False)]
    closing = seg.finish()
    assert closing is not None
    assert (closing.index, closing.start_item, len(closing.values), closing.final) == (
        2,
        33,
        7,
        True,
    )
    assert closing.values == tuple(range(33, 40))
    assert seg.finish() is None  # nothing pending after the close


def test_a_resumed_track_continues_after_what_was_published() -> None:
    # a pipe resumed after segment 1 (items 0..32) was published: the new
    # audio starts at item 33, in segment 2, never over a published item
    seg = AudioSegmenter(VID, 2000, first_item=items_at(4000))
    assert items_at(4000) == 33 and item_ms(33) == 4086
    assert _sound(seg, [7] * 17) == [(2, 33, 16, False)]


def test_long_segments_cut_the_soundtrack_every_240_s() -> None:
    seg = AudioSegmenter(VID, 600_000)
    per = items_at(240_000)
    done = _sound(seg, [1] * (per + 1))
    assert done == [(0, 0, per, False)] and per <= MAX_ITEMS


def test_the_watchers_audio_ranges_map_back_to_items_exactly() -> None:
    from node.cli.watch_cmds import _item_of

    assert all(_item_of(item_ms(i)) == i for i in range(0, 200_000, 7))
