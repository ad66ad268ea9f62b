"""``carcolor`` / ``python -m stream``: a thin command line over the library.

    carcolor run --source traffic.mp4 --output out.mp4 --log colors.jsonl
    carcolor run --config cams.yaml --log cams.jsonl   # every camera of cameras: (MQTT, web view)
    carcolor classify car1.jpg car2.png
    carcolor batch videos/*.mp4 --out results/   # many files on Ray (local workers, or --ray ADDRESS)
    carcolor serve                       # the original HTTP API on port 6002
    carcolor train --data ../shared/datasets/traffic-colors --out models/NAME
    carcolor evaluate --data DIR [--model FILE --labels FILE]
    carcolor evaluate --video V --tracks T [--detector motion]   # cars found / missed / extra on a clip
    carcolor synth --out build/renders --count 8000   # rendered training crops (needs Blender)

Expected errors print one line (``carcolor: error: ...``) and exit 2; Ctrl-C
or SIGTERM stops cleanly (outputs finalised) and exits 130.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import List, Optional

from .errors import CarcolorError

# Subcommands whose module owns its own argument parser: name -> (module, help, the extra it needs).
DELEGATED = {
    "serve": ("stream.server", "serve the original HTTP API (POST / with an image) on port 6002", "server"),
    "train": ("stream.training.train", "train a colour model on labelled photos", "train"),
    "evaluate": ("stream.training.evaluate", "measure a colour model on labelled photos", "train"),
    "synth": ("stream.training.synth", "render synthetic car crops for training (Blender, CPU)", "train"),
    "report": ("stream.report", "per-colour table and chart from a JSON Lines log", "report"),
}


def _config(args):
    from .config import load_config

    return load_config(args.config)


def cmd_run(args) -> int:
    from .pipeline import run

    cfg = _config(args).override(every=args.every, start=args.start, end=args.end, top_k=args.top_k,
                                 model_file=args.model, label_file=args.labels, detector=args.detector)
    if args.source is None:
        return _run_cameras(cfg, args)
    summary = run(cfg, args.source, boxes_file=args.boxes, output=args.output, log=args.log,
                  show=args.show, progress=not args.quiet, save_crops=args.save_crops)
    print(summary, file=sys.stderr)
    return 0


def _run_cameras(cfg, args) -> int:
    """``carcolor run --config cams.yaml`` without ``--source``: every camera of ``cameras:`` (the service)."""
    if not cfg.cameras:
        raise CarcolorError("run needs --source (a video, webcam index or URL), or cameras: in the --config file")
    unsupported = [flag for flag, value in (("--output", args.output), ("--show", args.show),
                                            ("--boxes", args.boxes), ("--save-crops", args.save_crops)) if value]
    if unsupported:
        raise CarcolorError(f"{', '.join(unsupported)}: for one --source; the cameras of the config have the "
                            "web view (web:) instead")
    try:
        from .service import run_service
    except ModuleNotFoundError as e:
        raise CarcolorError(f"the camera service needs the [service] extra, missing here ({e}): "
                            "pip install 'carcolor[service]'") from e
    for line in run_service(cfg, log=args.log):
        print(line, file=sys.stderr)
    return 0


def cmd_batch(args) -> int:
    from .batch import run_batch

    cfg = _config(args).override(top_k=args.top_k, model_file=args.model, label_file=args.labels,
                                 detector=args.detector, every=args.every)
    result = run_batch(cfg, args.videos, args.out, address=args.ray, workers=args.workers, chunk=args.chunk,
                       overlap=args.overlap, progress=not args.quiet)
    print(result, file=sys.stderr)
    return 2 if result.failed else 0


def cmd_classify(args) -> int:
    from .classify import ColorClassifier
    from .errors import ImageError
    from .imageio import read_image
    from .events import colors_json

    cfg = _config(args).override(top_k=args.top_k, model_file=args.model, label_file=args.labels)
    clf = ColorClassifier.from_config(cfg)
    images, errors = {}, {}
    for i, path in enumerate(args.images):  # a bad image is reported and the others still classified
        try:
            images[i] = read_image(path)
        except ImageError as e:
            errors[i] = str(e)
            print(f"carcolor: error: {e}", file=sys.stderr)
    probs = clf.predict_proba(list(images.values()))
    answers = dict(zip(images, zip(clf.top(probs), clf.decide(probs))))
    for i, path in enumerate(args.images):
        if i in errors:
            print(json.dumps({"image": path, "error": errors[i]}))
        else:
            top, decision = answers[i]
            print(json.dumps({"image": path, "colors": colors_json(top), "color": decision}))
    if errors:
        if len(args.images) > 1:
            print(f"carcolor: {len(errors)} of {len(args.images)} images could not be read", file=sys.stderr)
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="carcolor", description="Recognise the colour of cars in video.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(p):
        p.add_argument("--config", default=None, help="YAML config (default: the shipped config.yaml)")
        p.add_argument("--model", type=Path, default=None, help="model file (.onnx, .keras, .pb); overrides config")
        p.add_argument("--labels", type=Path, default=None, help="labels file; overrides config")
        p.add_argument("--top-k", type=int, default=None, help="colours per car (default from config: 3)")

    run = sub.add_parser("run", help="process a video file, webcam or stream")
    run.add_argument("--source", default=None, help="video file, webcam index (0) or rtsp:// / http:// URL; "
                     "without it, every camera of the config's cameras: (the camera service)")
    common(run)
    run.add_argument("--boxes", help="detections file: JSON Lines or MOT det.txt")
    run.add_argument("--detector", choices=["vehicle", "motion", "onnx", "none"], default=None,
                     help="how cars are found: the shipped vehicle detector (default), background subtraction "
                          "(fixed camera), a YOLO ONNX model, or none (the whole frame is one car)")
    run.add_argument("--save-crops", metavar="DIR", help="save each car's best crop here as a JPEG")
    run.add_argument("--output", help="annotated video to write (.mp4)")
    run.add_argument("--log", help="JSON Lines log to append to")
    run.add_argument("--show", action="store_true", help="show a live window (q quits)")
    run.add_argument("--every", type=int, default=None, help="process every Nth frame (files)")
    run.add_argument("--start", type=float, default=None, help="start at this many seconds (files)")
    run.add_argument("--end", type=float, default=None, help="stop at this many seconds (files)")
    run.add_argument("--quiet", action="store_true", help="no progress line")
    run.set_defaults(func=cmd_run)

    bat = sub.add_parser("batch", help="process many recorded videos in parallel on Ray (the [batch] extra)")
    bat.add_argument("videos", nargs="+", help="video files; each gives OUT/<name>.jsonl")
    bat.add_argument("--out", required=True, help="folder for the logs and summary.json / summary.csv")
    common(bat)
    bat.add_argument("--detector", choices=["vehicle", "motion", "onnx", "none"], default=None)
    bat.add_argument("--every", type=int, default=None, help="process every Nth frame")
    bat.add_argument("--ray", metavar="ADDRESS", default=None,
                     help="a Ray cluster (e.g. ray://head:10001 or auto); default: local workers on this machine")
    bat.add_argument("--workers", type=int, default=0, help="chunks at once (0 = every CPU Ray has)")
    bat.add_argument("--chunk", type=float, default=300.0, help="seconds of video per task (default 300)")
    bat.add_argument("--overlap", type=float, default=3.0,
                     help="seconds each chunk runs into the next, where tracks are joined (default 3)")
    bat.add_argument("--quiet", action="store_true", help="no progress line")
    bat.set_defaults(func=cmd_batch)

    cls = sub.add_parser("classify", help="print the colours of car images as JSON, one line each")
    cls.add_argument("images", nargs="+", help="image files (JPEG, PNG...)")
    common(cls)
    cls.set_defaults(func=cmd_classify)

    for name, (_, text, _extra) in DELEGATED.items():
        sub.add_parser(name, help=text, add_help=False)
    return parser


def _terminate(signum, frame):
    raise KeyboardInterrupt


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Our errors say what went wrong; OpenCV's and TensorFlow's own chatter only adds noise.
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    signal.signal(signal.SIGTERM, _terminate)
    if argv and argv[0] == "evaluate" and any(a == "--tracks" or a.startswith("--tracks=") for a in argv):
        from .tracks_eval import main as evaluate_tracks  # a run on a clip: no training packages needed

        return evaluate_tracks(argv[1:])
    if argv and argv[0] in DELEGATED:
        name, _, extra = DELEGATED[argv[0]]
        try:
            module = importlib.import_module(name)
            return module.main(argv[1:])
        except ModuleNotFoundError as e:
            if not (e.name or "").startswith("stream"):
                print(f"carcolor: error: '{argv[0]}' needs the [{extra}] extra, missing here ({e}): "
                      f"pip install 'carcolor[{extra}]'", file=sys.stderr)
                return 2
            raise
        except KeyboardInterrupt:  # the same one line and exit code for every command
            print(f"carcolor: {argv[0]} interrupted", file=sys.stderr)
            return 130
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CarcolorError as e:
        print(f"carcolor: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("carcolor: interrupted, outputs closed", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
