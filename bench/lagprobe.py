"""Run a server under an event-loop lag probe and a garbage-collector log.

    python bench/lagprobe.py OUT -m alertd run -c alertd.yaml
    python bench/lagprobe.py OUT bench/yardstick.py --port P ...

The server runs in this interpreter unchanged (runpy); the probe only watches:

- loop lag: a thread asks the server's event loop to run a callback every
  --interval (call_soon_threadsafe) and writes how long the loop took to run it.
  A loop busy in one long turn (a WAL checkpoint, a full collection, a slow
  timer) shows up as a lag as long as the turn; an idle loop answers in ~0.1 ms.
- GC pauses: every collection's generation and duration (gc.callbacks).

OUT gets one line per sample, time.monotonic() (one clock for every process on
the machine) so the benchmark can keep the samples of one phase:
``L <t> <lag s>`` and ``G <t> <generation> <seconds>``.
The loop is caught where uvicorn makes it (uvloop.new_event_loop, or asyncio's).
"""
from __future__ import annotations

import asyncio
import gc
import os
import runpy
import sys
import threading
import time

INTERVAL = float(os.environ.get("LAGPROBE_INTERVAL", "0.005"))
# LAGPROBE_STACKS=ms: when the loop has not run the callback after that long, log
# the loop thread's Python stack as it is then (``S <t> <frames>``): what stalls it
STACKS = float(os.environ.get("LAGPROBE_STACKS", "0")) / 1000


class Probe:
    def __init__(self, path: str) -> None:
        self.out = open(path, "w", buffering=1 << 16)
        self.lock = threading.Lock()
        self.gc_start = 0.0

    def write(self, line: str) -> None:
        with self.lock:
            self.out.write(line)

    def on_gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self.gc_start = time.monotonic()
        else:
            now = time.monotonic()
            self.write(f"G {now:.6f} {info['generation']} {now - self.gc_start:.6f}\n")

    def stack(self, ident: int) -> None:
        frame = sys._current_frames().get(ident)
        frames = []
        while frame is not None and len(frames) < 12:
            code = frame.f_code
            frames.append(f"{os.path.basename(code.co_filename)}:{frame.f_lineno}:{code.co_name}")
            frame = frame.f_back
        self.write(f"S {time.monotonic():.6f} {';'.join(frames)}\n")

    def watch(self, loop: asyncio.AbstractEventLoop) -> None:
        ident = threading.get_ident()
        done = threading.Event()

        def ran(sent: float) -> None:
            now = time.monotonic()
            done.set()
            self.write(f"L {now:.6f} {now - sent:.6f}\n")

        def run() -> None:
            last_flush = time.monotonic()
            while not loop.is_closed():
                time.sleep(INTERVAL)
                done.clear()
                try:
                    loop.call_soon_threadsafe(ran, time.monotonic())
                except RuntimeError:  # closed meanwhile
                    break
                if STACKS and not done.wait(STACKS):
                    self.stack(ident)
                if time.monotonic() - last_flush > 0.5:
                    with self.lock:
                        self.out.flush()
                    last_flush = time.monotonic()

        threading.Thread(target=run, name="lagprobe", daemon=True).start()


def install(probe: Probe) -> None:
    """Wrap the loop factories uvicorn calls so the probe learns the server's loop."""
    def wrap(factory):
        def new_event_loop():
            loop = factory()
            probe.watch(loop)
            return loop
        return new_event_loop

    try:
        import uvloop
        uvloop.new_event_loop = wrap(uvloop.new_event_loop)
    except ImportError:
        pass
    asyncio.new_event_loop = wrap(asyncio.new_event_loop)
    gc.callbacks.append(probe.on_gc)


def main() -> None:
    out, rest = sys.argv[1], sys.argv[2:]
    probe = Probe(out)
    install(probe)
    if rest[0] == "-m":
        sys.argv = [rest[1], *rest[2:]]
        runpy.run_module(rest[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = rest
        sys.path.insert(0, os.path.dirname(os.path.abspath(rest[0])))
        runpy.run_path(rest[0], run_name="__main__")


if __name__ == "__main__":
    main()
