"""The live view: a Flask app served by waitress (threads) beside the cameras.

- ``/``: every camera's annotated live view (MJPEG), status, rates, last cars with
  colour swatches and counts; the page polls ``/api/cameras`` every second.
- ``/api/cameras``: the cameras' state as JSON (``Camera.state``).
- ``/cameras/<name>/stream.mjpg``: the annotated live view, ``multipart/x-mixed-replace``
  JPEGs at ``web.stream_fps``; ``/cameras/<name>/snapshot.jpg``: the latest one.
- ``/metrics``: Prometheus text (:mod:`.metrics`).

Unknown camera: 404 JSON; no frame yet: 503 JSON with ``Retry-After``.
"""
from __future__ import annotations

import threading
import time
from typing import Optional

from ..config import WebConfig
from ..overlay import SWATCH
from . import metrics

BOUNDARY = "carcolorframe"


def _hex(bgr) -> str:
    b, g, r = bgr
    return f"#{r:02x}{g:02x}{b:02x}"


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>carcolor cameras</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px system-ui,sans-serif;margin:12px;background:#111;color:#ddd}
h1{font-size:18px;margin:0 0 10px}
#cams{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:12px}
.cam{background:#1c1c1c;border-radius:6px;padding:8px}
.cam img{width:100%;background:#000;display:block;aspect-ratio:16/9;object-fit:contain}
.head{display:flex;justify-content:space-between;align-items:center;margin-bottom:6px}
.name{font-weight:600;font-size:16px}
.status{padding:1px 8px;border-radius:10px;font-size:12px}
.online,.reconnected{background:#1f6f35}.offline,.failed,.max_retries{background:#8a2020}
.starting,.stopped,.ended{background:#555}.ir{background:#4b3b8a;margin-left:4px}
.rates{font-size:12px;color:#aaa;margin:4px 0}
.sw{display:inline-block;width:12px;height:12px;border:1px solid #888;vertical-align:middle;margin-right:4px}
ul{list-style:none;padding:0;margin:4px 0;font-size:13px}
</style></head><body>
<h1>carcolor: <span id="ncams">0</span> cameras <small id="updated"></small></h1>
<div id="cams"></div>
<script>
const SWATCH = __SWATCH__;
function sw(c){return '<span class="sw" style="background:'+(SWATCH[c]||'#aaa')+'"></span>';}
function esc(s){return String(s).replace(/[&<>"]/g,ch=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[ch]));}
function card(c){
  let el=document.getElementById('cam-'+c.name);
  if(!el){
    el=document.createElement('div'); el.className='cam'; el.id='cam-'+c.name;
    el.innerHTML='<div class="head"><span class="name">'+esc(c.name)+'</span><span><span class="status"></span>'+
      '<span class="status ir" hidden>IR mode</span></span></div>'+
      '<img alt="'+esc(c.name)+' live view" src="/cameras/'+encodeURIComponent(c.name)+'/stream.mjpg">'+
      '<div class="rates"></div><div class="counts"></div><ul class="cars"></ul>';
    document.getElementById('cams').appendChild(el);
  }
  const st=el.querySelector('.status'); st.textContent=c.status; st.className='status '+c.status;
  el.querySelector('.ir').hidden = c.mode!=='ir';
  el.querySelector('.rates').textContent='fps in '+c.fps_in+' / processed '+c.fps_processed+
    ', dropped '+c.dropped+', reconnects '+c.reconnects+', cars '+c.cars+(c.reason?' ('+c.reason+')':'');
  const counts=Object.entries(c.by_color).sort((a,b)=>b[1]-a[1]).map(([k,n])=>sw(k)+esc(k)+' '+n).join(' &nbsp; ');
  el.querySelector('.counts').innerHTML=counts;
  el.querySelector('.cars').innerHTML=c.last_cars.map(x=>'<li class="car">'+sw(x.color)+esc(x.color)+
    ' #'+x.id+' '+Math.round(x.prob*100)+'%'+(x.reason?' ('+esc(x.reason)+')':'')+' '+
    new Date(x.wall*1000).toLocaleTimeString()+'</li>').join('');
}
async function poll(){
  try{
    const r=await fetch('/api/cameras'); const data=await r.json();
    document.getElementById('ncams').textContent=data.cameras.length;
    data.cameras.forEach(card);
    document.getElementById('updated').textContent='updated '+new Date().toLocaleTimeString();
  }catch(e){document.getElementById('updated').textContent='service unreachable';}
  setTimeout(poll,1000);
}
poll();
</script></body></html>
"""


def create_app(service, cfg: WebConfig):
    """The Flask app over a running ``Service``."""
    import json

    from flask import Flask, Response, jsonify

    app = Flask("carcolor.service")
    page = PAGE.replace("__SWATCH__", json.dumps({k: _hex(v) for k, v in SWATCH.items()}))
    period = 1.0 / cfg.stream_fps
    stopping = threading.Event()
    app.config["stopping"] = stopping

    def camera(name: str):
        cam = service.cameras.get(name)
        if cam is None:
            return None, (jsonify(error=f"no camera '{name}'", cameras=sorted(service.cameras)), 404)
        return cam, None

    @app.get("/")
    def index():
        return Response(page, mimetype="text/html")

    @app.get("/api/cameras")
    def cameras():
        return jsonify(cameras=[c.state() for c in service.cameras.values()],
                       mqtt=None if service.mqtt is None else {
                           "connected": service.mqtt.connected, "queued": service.mqtt.queued,
                           "sent": service.mqtt.sent, "dropped": service.mqtt.dropped,
                           "pending": service.mqtt.pending},
                       uptime=round(time.monotonic() - service.t0, 3))

    @app.get("/cameras/<name>/snapshot.jpg")
    def snapshot(name: str):
        cam, err = camera(name)
        if err:
            return err
        data = cam.jpeg(cfg.jpeg_quality)
        if data is None:
            return jsonify(error=f"camera '{name}' has no frame yet"), 503, {"Retry-After": "1"}
        return Response(data, mimetype="image/jpeg", headers={"Cache-Control": "no-store"})

    @app.get("/cameras/<name>/stream.mjpg")
    def stream(name: str):
        cam, err = camera(name)
        if err:
            return err

        def frames():
            sent = -2
            while not stopping.is_set():
                index = cam.frame_index
                if index != sent and index >= 0:
                    data = cam.jpeg(cfg.jpeg_quality)
                    if data is not None:
                        sent = index
                        yield (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n"
                               .encode() + data + b"\r\n")
                stopping.wait(period)

        return Response(frames(), mimetype=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
                        headers={"Cache-Control": "no-store"}, direct_passthrough=True)

    @app.get("/metrics")
    def prometheus():
        return Response(metrics.render(service), content_type=metrics.CONTENT_TYPE)

    return app


class WebServer:
    """The app on waitress in a thread: ``start()``, ``url``, ``close()``."""

    def __init__(self, service, cfg: WebConfig):
        from waitress import create_server

        from ..errors import CarcolorError

        self.app = create_app(service, cfg)
        try:
            self.server = create_server(self.app, host=cfg.host, port=cfg.port, threads=cfg.threads,
                                        ident="carcolor", channel_timeout=30, asyncore_use_poll=True)
        except OSError as e:
            raise CarcolorError(f"web: cannot listen on {cfg.host}:{cfg.port}: {e.strerror or e}") from e
        self.url = f"http://{self.server.effective_host}:{self.server.effective_port}"
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="web", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            self.server.run()
        except (OSError, ValueError):  # closed under it at shutdown
            pass

    def close(self) -> None:
        self.app.config["stopping"].set()
        self.server.close()
        if self._thread is not None:
            self._thread.join(2.0)
