"""The camera service: many cameras in one process, events on MQTT, a live web view, metrics.

- :mod:`.service`: ``Service`` (the cameras, the log, MQTT, the web view), ``run_service``;
- :mod:`.camera`: ``Camera``, one source with its own capture, supervisor, tracking and count line;
- :mod:`.batch`: ``SharedColors``, the colour model shared by every camera's thread, batched;
- :mod:`.ir`: night / IR (grey picture) detection;
- :mod:`.mqtt`: ``MqttPublisher`` (paho-mqtt), bounded queue, reconnects, retained status, last will;
- :mod:`.web`: the Flask app (page, ``/api/cameras``, MJPEG, snapshots) on waitress;
- :mod:`.metrics`: ``/metrics`` in Prometheus text format.
"""
from .service import Service, run_service

__all__ = ["Service", "run_service"]
