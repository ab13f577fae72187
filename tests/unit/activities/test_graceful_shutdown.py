"""`baton-worker` as a process: it serves a module's Worker, and SIGTERM lets the tasks in
flight finish before it exits."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.timeout(60)

HERE = Path(__file__).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_sigterm_finishes_the_tasks_in_flight_then_exits() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "baton_activities.cli", "sdk_sample:worker"]
    command += ["--app-dir", str(HERE), "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, process.stdout and process.stdout.read()
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "baton-worker did not start"
            time.sleep(0.05)

        answers: list[Any] = []

        def slow() -> None:
            body = {"input": {"seconds": 1.5}, "idempotencyKey": "u1/slow/1", "attempt": 1}
            answers.append(httpx.post(f"{url}/activities/slow", json=body, timeout=30).json())

        caller = threading.Thread(target=slow)
        caller.start()
        time.sleep(0.5)  # the task is running
        os.kill(process.pid, signal.SIGTERM)
        time.sleep(0.2)
        with pytest.raises(httpx.ConnectError):  # no new connections while draining
            httpx.get(f"{url}/healthz", timeout=1)
        caller.join(10)
        assert answers == [{"output": "done"}]
        # uvicorn re-raises the SIGTERM it handled once it has shut down.
        assert process.wait(10) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
