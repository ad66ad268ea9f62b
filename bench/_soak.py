"""What the soak scripts share: the figures table, the verdict and the clean-up of their work folder."""
from __future__ import annotations

from pathlib import Path
from typing import List, Sequence, Tuple


def report(rows: Sequence[Tuple[str, str]], failures: List[str], work: Path, keep: bool, kept: str) -> int:
    """Print ``rows`` and PASS / FAIL; keep ``work`` (``kept`` names what is in it) when asked or failed,
    else empty it. Returns the exit status: 1 on any failure."""
    rows = list(rows) + [("result", "PASS" if not failures else "FAIL: " + "; ".join(failures))]
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"{k:<{width}}  {v}" for k, v in rows))
    if keep or failures:
        print(f"{kept} kept in {work}")
    else:
        for p in work.rglob("*"):
            if p.is_file():
                p.unlink()
    return 1 if failures else 0


def terminate(proc, timeout: float) -> float:
    """SIGTERM ``proc`` (a ``subprocess.Popen``), SIGKILL it after ``timeout`` s; the seconds it took to exit."""
    import signal
    import subprocess
    import time

    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return time.monotonic() - t0


def wait_started(proc, ready, errfile: Path, poll: float, timeout: float = 120.0) -> None:
    """Wait until ``ready()``; exit naming the process's stderr tail if it died or took over ``timeout`` s."""
    import time

    t0 = time.monotonic()
    while not ready():
        if proc.poll() is not None or time.monotonic() - t0 > timeout:
            raise SystemExit(f"carcolor did not start: {errfile.read_text()[-2000:]}")
        time.sleep(poll)
