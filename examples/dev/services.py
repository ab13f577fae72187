"""Small real HTTP services for `make dev`: inventory, payments and a land registry.

They behave as well-built APIs do: a repeated `Idempotency-Key` gets the first answer again
without a second effect, so a run re-issued after an operator crash changes nothing twice.
Run: python examples/dev/services.py [--port 8900]
"""

from __future__ import annotations

import argparse
import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_ids = itertools.count(1)
_lock = threading.Lock()
_answers: dict[str, tuple[int, Any]] = {}
_reservations: dict[str, dict[str, Any]] = {}


def handle(method: str, path: str, body: Any) -> tuple[int, Any]:
    """The services' behaviour, by route."""
    parts = [p for p in path.split("/") if p]
    if method == "POST" and parts == ["inventory", "reservations"]:
        reservation = {"id": f"r-{next(_ids)}", "property": (body or {}).get("property")}
        _reservations[reservation["id"]] = reservation
        return 201, reservation
    if method == "DELETE" and parts[:2] == ["inventory", "reservations"] and len(parts) == 3:
        return (200, {"released": parts[2]}) if _reservations.pop(parts[2], None) else (404, {})
    if method == "POST" and parts == ["payments", "charges"]:
        amount = (body or {}).get("amount", 0)
        if amount > 5_000_000:
            return 402, {"error": "CardDeclined", "message": "amount over the card limit"}
        return 201, {"id": f"pay-{next(_ids)}", "amount": amount}
    if method == "POST" and parts == ["payments", "refunds"]:
        return 201, {"id": f"ref-{next(_ids)}", "payment": (body or {}).get("payment")}
    if method == "POST" and parts == ["registry", "transfers"]:
        return 201, {"id": f"t-{next(_ids)}", "property": (body or {}).get("property")}
    return 404, {"error": "NotFound", "message": f"no route {method} {path}"}


class Handler(BaseHTTPRequestHandler):
    """Routes every method through `handle`, answering repeats of a key from memory."""

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        key = self.headers.get("Idempotency-Key")
        with _lock:
            if key is not None and key in _answers:
                status, answer = _answers[key]
            else:
                status, answer = handle(self.command, self.path, body)
                if key is not None:
                    _answers[key] = (status, answer)
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        print(f"{self.command} {self.path} {status} key={key}", flush=True)

    do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815 - http.server dispatches by these names

    def log_message(self, format: str, *args: Any) -> None:
        return


def main() -> None:
    """Serve until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8900)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"services on http://127.0.0.1:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
