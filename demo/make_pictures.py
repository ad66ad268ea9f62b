"""Regenerate the README's pictures from the demo: docs/overlay.png and docs/report.png.

    python demo/make_pictures.py                 # the demo config and its clip, frame 255

Runs the demo exactly as ``make demo`` does (the shipped vehicle detector, tracking, count
line), keeps the annotated frame ``--frame`` as a PNG (lossless, not a frame of
the encoded video) and draws ``carcolor report``'s chart of the run's log.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from stream.boxes import box_source  # noqa: E402
from stream.cars import CarVotes, LineCounter  # noqa: E402
from stream.classify import ColorClassifier  # noqa: E402
from stream.capture import open_source  # noqa: E402
from stream.config import load_config  # noqa: E402
from stream.overlay import Overlay  # noqa: E402
from stream.pipeline import ColorStage, process  # noqa: E402
from stream.report import chart, read_cars  # noqa: E402
from stream.sinks import JsonlLog  # noqa: E402
from stream.track import Tracker  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=HERE / "config.yaml")
    parser.add_argument("--source", type=Path, default=HERE / "motorway-960x540.mp4")
    parser.add_argument("--frame", type=int, default=255, help="the frame to keep as docs/overlay.png")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args(argv)
    cfg = load_config(args.config)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        log_path = Path(tmp) / "colors.jsonl"
        log = JsonlLog(log_path)
        src = open_source(args.source)
        clf = ColorClassifier.from_config(cfg)
        counter = LineCounter(cfg.count_line, cfg.tracking.min_frames) if cfg.count_line else None
        stages = [Tracker(cfg.tracking), CarVotes(cfg.tracking, clf)]
        stages += [counter] if counter else []
        overlay = Overlay(show=min(2, cfg.top_k), counter=counter)

        def keep(record) -> None:
            if record.frame.index == args.frame:
                cv2.imwrite(str(args.out / "overlay.png"), overlay.draw(record.frame.image, record),
                            [cv2.IMWRITE_PNG_COMPRESSION, 9])

        try:
            summary = process(src, src.name, box_source(cfg), ColorStage(clf), stages,
                              [log, keep], on_event=log.write)
        finally:
            src.close()
            log.close()
        cars, _ = read_cars(log_path)
        chart(cars, args.out / "report.png", bin_s=1.0,
              title=f"{args.source.name}: cars per colour over time ({len(cars)} cars)")
    print(f"{summary}; {len(cars)} cars; wrote {args.out / 'overlay.png'} and {args.out / 'report.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
