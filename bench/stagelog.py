"""The benches' stage messages: timestamped lines from the demo pipeline's progress hooks (bench helper)."""

from __future__ import annotations

import time

from nas_recon.pipelines.demo import DemoProgress


class Log(DemoProgress):
    """Timestamped stage messages."""

    def __init__(self) -> None:
        self.t0 = time.time()

    def stage(self, text: str) -> None:
        print(f"[{time.time() - self.t0:7.0f} s] {text}", flush=True)
