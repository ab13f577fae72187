"""`baton operator` as a child process of the test session: started, killed -9, restarted,
its log read and its /metrics scraped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from scrape import Samples, scrape

READY = "baton operator started"
"""What the operator logs once its start-up is through."""

KWOK_ANNOTATIONS = "kwok.baton.dev/*"
"""Pod annotation keys every test operator lets Job steps set: they steer kwok's simulated pods
(hack/kwok/stages.yaml), and the operator's pod policy allows no key by default."""


class OperatorProcess:
    """One operator process writing its log to a file.

    `standalone=False` runs it in a peering (pass `--peering` and `--priority` among `args`);
    `verbose=False` logs at INFO (DEBUG logs every response body, which slows a busy operator
    down); `metrics_port` serves /metrics there (0: not served)."""

    def __init__(
        self,
        env: Mapping[str, str],
        log_path: Path,
        *args: str,
        standalone: bool = True,
        verbose: bool = True,
        metrics_port: int = 0,
    ) -> None:
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.args = args
        self.standalone = standalone
        self.verbose = verbose
        self.metrics_port = metrics_port
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> OperatorProcess:
        """Start it (again); its log is appended to."""
        self.starts += 1
        command = [sys.executable, "-m", "baton.cli.main", "operator"]
        command += ["--standalone"] if self.standalone else []
        command += ["--liveness", "", "--log-format", "full"]
        command += ["--allow-job-pod-annotation", KWOK_ANNOTATIONS]
        command += ["--metrics-port", str(self.metrics_port)]
        command += ["--verbose"] if self.verbose else []
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start {self.starts} =====\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [*command, *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def kill(self) -> None:
        """SIGKILL: the operator gets no chance to clean up, as in a node crash."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM and wait, then SIGKILL whatever is left."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()

    @property
    def alive(self) -> bool:
        """True while the process runs."""
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until the latest start got through start-up (imports alone take seconds on a
        busy machine: a kill before that would test nothing)."""
        deadline = time.monotonic() + timeout
        while self.log_path.read_text(errors="replace").count(READY) < self.starts:
            assert self.alive, f"the operator died:\n{self.log_tail(40)}"
            assert time.monotonic() < deadline, f"not ready in {timeout}s:\n{self.log_tail(40)}"
            time.sleep(0.05)

    def metrics(self, timeout: float = 30.0) -> Samples:
        """Its /metrics now, waiting up to `timeout` for the server to be up."""
        assert self.metrics_port, "started without a metrics port"
        deadline = time.monotonic() + timeout
        while True:
            try:
                return scrape(self.metrics_port)
            except OSError:
                assert self.alive, f"the operator died:\n{self.log_tail(40)}"
                assert time.monotonic() < deadline, f"no /metrics:\n{self.log_tail(40)}"
                time.sleep(0.2)

    def lines(self, *words: str) -> list[str]:
        """Log lines containing every one of `words`."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return [line for line in text.splitlines() if all(w in line for w in words)]

    def log_tail(self, lines: int = 60) -> str:
        """The end of its log, for assertion messages."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
