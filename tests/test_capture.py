"""Video files as iterators of frames: order, timestamps, --every/--start/--end, errors."""
import cv2
import numpy as np
import pytest

from conftest import CLIP_FPS, CLIP_FRAMES, write_clip
from stream.capture import FileSource, is_live, open_source
from stream.errors import SourceError


def test_every_frame_in_order_with_container_timestamps(clip):
    with open_source(clip) as src:
        frames = list(src)
        assert src.size == (640, 360)
        assert src.expected == CLIP_FRAMES
    assert [f.index for f in frames] == list(range(CLIP_FRAMES))
    ts = np.array([f.timestamp for f in frames])
    assert np.allclose(ts, np.arange(CLIP_FRAMES) / CLIP_FPS, atol=1e-3)
    assert all(f.image.shape == (360, 640, 3) and f.image.dtype == np.uint8 for f in frames)
    assert all(f.wall is None for f in frames)


def test_frames_are_the_decoded_pictures(clip):
    """The frame stream equals a plain sequential decode, picture for picture."""
    cap = cv2.VideoCapture(str(clip))
    with open_source(clip) as src:
        for frame in src:
            ok, ref = cap.read()
            assert ok and np.array_equal(frame.image, ref)
    assert not cap.read()[0]


def test_every_nth_frame_keeps_source_numbers(clip):
    with open_source(clip, every=4) as src:
        idx = [f.index for f in src]
        assert src.expected == len(idx)
    assert idx == list(range(0, CLIP_FRAMES, 4))


def test_start_and_end_in_seconds(clip):
    with open_source(clip, start=0.5, end=1.0) as src:
        frames = list(src)
    assert [f.index for f in frames] == list(range(15, 30))
    assert all(0.5 - 1e-6 <= f.timestamp < 1.0 for f in frames)


def test_slow_consumer_gets_every_frame(tmp_path):
    """Files never drop: the decode queue blocks instead."""
    import time

    path = write_clip(tmp_path / "c.mp4", frames=30, size=(160, 120))
    with FileSource(path, queue_size=2) as src:
        seen = []
        for f in src:
            time.sleep(0.01)
            seen.append(f.index)
    assert seen == list(range(30))


def test_missing_file(tmp_path):
    with pytest.raises(SourceError, match="not found"):
        open_source(tmp_path / "nope.mp4")


def test_not_a_video(tmp_path):
    p = tmp_path / "notes.mp4"
    p.write_text("this is not a video\n" * 100)
    with pytest.raises(SourceError, match="notes.mp4"):
        open_source(p)


def test_truncated_video_yields_what_it_has(clip, tmp_path):
    data = clip.read_bytes()
    p = tmp_path / "cut.mp4"
    p.write_bytes(data[: len(data) * 2 // 3])
    try:
        src = open_source(p)
    except SourceError as e:  # a cut mp4 may lose its index entirely: then it must say so
        assert "cut.mp4" in str(e)
        return
    with src:
        idx = [f.index for f in src]
    assert idx == list(range(len(idx)))


def test_live_specs():
    assert is_live("0") and is_live(0) and is_live("rtsp://cam/1") and is_live("http://x/y.mjpg")
    assert not is_live("video.mp4") and not is_live("/data/0.mp4")
