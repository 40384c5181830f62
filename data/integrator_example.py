"""An integrator's view of Doorstep: submit a day, wait for the callback, fetch the routes.

    python data/integrator_example.py --server http://127.0.0.1:8000 --key dsk_... \
        --listen 127.0.0.1:8765 --callback-url http://127.0.0.1:8765/doorstep \
        data/small-with-matrices.json

It starts a small HTTP receiver (``--listen``), submits the request with ``callback_url`` and an
``Idempotency-Key`` (re-running it with the same ``--idempotency-key`` does not plan the day twice),
waits for Doorstep's callback, checks its signature with the organisation's secret
(``GET /v1/callbacks/secret``) and prints each crew's stops. In production the receiver is your
own service on the internet: Doorstep refuses loopback and private callback addresses unless the
server sets ``DOORSTEP_CALLBACK_ALLOW_PRIVATE=true`` (as for trying this script on one machine).
Only the standard library and httpx (installed with Doorstep).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import queue
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx


def signature_ok(secret: str, body: bytes, header: str, tolerance_s: float = 300) -> bool:
    """Doorstep's ``X-Doorstep-Signature: t=<unix>,v1=<hex>``: HMAC-SHA256 of ``"<t>.<body>"``."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return abs(time.time() - timestamp) <= tolerance_s and hmac.compare_digest(expected, fields.get("v1", ""))


def receiver(listen: str, calls: queue.Queue[tuple[dict[str, str], bytes]]) -> ThreadingHTTPServer:
    host, port = listen.rsplit(":", 1)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            calls.put((dict(self.headers.items()), body))
            self.send_response(204)  # answer at once; do the work after (Doorstep waits 5 s at most)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, int(port)), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("request", type=Path, help="a plan request (the body of POST /v1/plans)")
    parser.add_argument("--server", default="http://127.0.0.1:8000")
    parser.add_argument("--key", default=None, help="an integrator's API key (none: an open local server)")
    parser.add_argument("--listen", default="127.0.0.1:8765", help="where this script receives the callback")
    parser.add_argument("--callback-url", default=None, help="the address Doorstep calls (default: --listen's)")
    parser.add_argument("--idempotency-key", default=None, help="re-use to retry safely (default: a new one)")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()

    headers = {"Authorization": f"Bearer {args.key}"} if args.key else {}
    calls: queue.Queue[tuple[dict[str, str], bytes]] = queue.Queue()
    server = receiver(args.listen, calls)
    with httpx.Client(base_url=args.server, headers=headers, timeout=30) as api:
        secret = api.get("/v1/callbacks/secret").raise_for_status().json()["secret"]
        body = json.loads(args.request.read_text())
        body["callback_url"] = args.callback_url or f"http://{args.listen}/doorstep"
        key = args.idempotency_key or uuid.uuid4().hex
        submitted = api.post("/v1/plans", json=body, headers={"Idempotency-Key": key})
        if submitted.status_code >= 400:
            print(f"refused ({submitted.status_code}): {submitted.text}", file=sys.stderr)
            return 1
        plan_id = submitted.json()["id"]
        print(f"submitted plan {plan_id} (Idempotency-Key {key}); waiting for the callback")
        deadline = time.monotonic() + args.timeout
        while True:
            try:
                call_headers, call_body = calls.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                print("no callback in time; the delivery log says:", file=sys.stderr)
                print(api.get(f"/v1/plans/{plan_id}/callbacks").text, file=sys.stderr)
                return 1
            if not signature_ok(secret, call_body, call_headers.get("X-Doorstep-Signature", "")):
                print("a callback with a wrong signature: ignored", file=sys.stderr)
                continue
            event = json.loads(call_body)
            if event["plan_id"] == plan_id:
                break
        print(f"callback: {event['event']}")
        if event["status"] != "done":
            print(json.dumps(event.get("error")), file=sys.stderr)
            return 1
        plan = api.get(f"/v1/plans/{plan_id}").raise_for_status().json()["plan"]
        for route in plan["routes"]:
            stops = [f"{s['arrival']} {s['id']}" for s in route["steps"] if s["kind"] in ("visit", "stop")]
            print(f"{route['vehicle_id']}: {', '.join(stops)}")
        for left in plan["unassigned"]:
            print(f"not planned: {left['visit_id']} ({left['reason']})")
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
