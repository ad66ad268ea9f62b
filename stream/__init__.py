"""carcolor: recognise the colour of cars in video.

    import stream
    with stream.open("traffic.mp4", config="my.yaml") as video:   # a file, a webcam index or a URL
        for car in video.cars():                                  # each tracked car once, its voted colour
            print(car.id, car.first, car.color, car.prob)
    stream.classify_images(["car1.jpg", "car2.png"])              # [Colors(color='red', colors=(...)), ...]

Names are imported on first use, so ``import stream`` stays light.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "open": "stream.api", "CarStream": "stream.api", "classify_images": "stream.api", "Colors": "stream.api",
    "ColorClassifier": "stream.classify", "load_config": "stream.config", "Config": "stream.config",
    "CarEvent": "stream.events", "CountEvent": "stream.events", "to_json": "stream.events",
    "Frame": "stream.record", "Cars": "stream.record", "FrameRecord": "stream.record",
    "open_source": "stream.capture", "run": "stream.pipeline",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'stream' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
