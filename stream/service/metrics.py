"""``/metrics``: the service in Prometheus text format (exposition format 0.0.4).

Per camera (label ``camera``): fps in and processed, frames, dropped frames,
reconnects, up (1 online), IR mode, cars by colour; the shared colour model's
calls, crops and seconds (latency = seconds / calls); MQTT connected, queued,
sent, dropped, pending.
"""
from __future__ import annotations

from typing import Dict, Iterable, List, Tuple

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items()) + "}"


class _Text:
    def __init__(self):
        self.lines: List[str] = []

    def metric(self, name: str, kind: str, help_: str, samples: Iterable[Tuple[Dict[str, str], float]]) -> None:
        self.lines += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]
        for labels, value in samples:
            self.lines.append(f"{name}{_labels(labels)} {float(value):g}")


def render(service) -> str:
    """The metrics text of a running ``Service``."""
    out = _Text()
    cams = list(service.cameras.values())
    states = {c.name: c.state() for c in cams}

    def per(key):
        return [({"camera": n}, s[key]) for n, s in states.items()]

    out.metric("carcolor_camera_up", "gauge", "1 while the camera delivers frames",
               [({"camera": n}, 1 if s["status"] in ("online", "reconnected") else 0) for n, s in states.items()])
    out.metric("carcolor_camera_ir_mode", "gauge", "1 while the picture is grey (night/IR: colours unknown)",
               [({"camera": n}, 1 if s["mode"] == "ir" else 0) for n, s in states.items()])
    out.metric("carcolor_camera_fps_in", "gauge", "frames per second decoded, last 5 s", per("fps_in"))
    out.metric("carcolor_camera_fps_processed", "gauge", "frames per second processed, last 5 s",
               per("fps_processed"))
    out.metric("carcolor_camera_frames_total", "counter", "frames processed", per("frames"))
    out.metric("carcolor_camera_frames_read_total", "counter", "frames decoded", per("frames_read"))
    out.metric("carcolor_camera_dropped_frames_total", "counter", "live frames replaced before processing",
               per("dropped"))
    out.metric("carcolor_camera_reconnects_total", "counter", "reconnections of the camera", per("reconnects"))
    out.metric("carcolor_camera_processing_seconds_total", "counter",
               "time the camera's thread spent on its frames (boxes, colours, tracking)",
               [({"camera": c.name}, round(c.seconds, 6)) for c in cams])
    out.metric("carcolor_cars_total", "counter", "car events by colour",
               [({"camera": n, "color": color}, k) for n, s in states.items() for color, k in sorted(s["by_color"].items())])
    shared = service.shared
    out.metric("carcolor_model_calls_total", "counter", "colour model calls (shared by every camera)",
               [({}, shared.calls)])
    out.metric("carcolor_model_crops_total", "counter", "car crops classified", [({}, shared.crops)])
    out.metric("carcolor_model_seconds_total", "counter", "time in the colour model; latency = this / calls",
               [({}, round(shared.seconds, 6))])
    mq = service.mqtt
    if mq is not None:
        out.metric("carcolor_mqtt_connected", "gauge", "1 while connected to the broker", [({}, int(mq.connected))])
        out.metric("carcolor_mqtt_connects_total", "counter", "successful connections", [({}, mq.connects)])
        out.metric("carcolor_mqtt_queued_total", "counter", "messages queued for the broker", [({}, mq.queued)])
        out.metric("carcolor_mqtt_sent_total", "counter", "messages acknowledged (QoS 1) or sent (QoS 0)",
                   [({}, mq.sent)])
        out.metric("carcolor_mqtt_dropped_total", "counter", "oldest messages dropped from a full queue",
                   [({}, mq.dropped)])
        out.metric("carcolor_mqtt_pending", "gauge", "messages not yet acknowledged", [({}, mq.pending)])
    return "\n".join(out.lines) + "\n"
