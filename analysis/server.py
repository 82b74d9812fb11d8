"""The Argo Rollouts ``web`` metric provider: ``GET /judge`` answers a verdict as JSON.

Contract (docs/analysis.md has the matching AnalysisTemplate):

- ``GET /judge?preview=<version|hash>&active=<version|hash>[&window=5m][&service=..][&checks=a,b]
  [&namespace=..]``
- 200 with the verdict for a judged result: ``phase`` is Successful, Failed or Inconclusive;
- 503 with the verdict when it could not be judged (phase Error: Prometheus down, slow, failing);
- 503 with ``phase: Error`` when ``max_concurrent`` judgements are already running (Argo
  measures again at its next interval);
- 400 for a bad argument (a window longer than ``max_window`` included), 404 for an unknown path,
  405 for another method, 500 for a bug; a client that does not
  send its request within ``request_timeout`` is disconnected.

Every answer, including the ones ``http.server`` writes itself for a malformed request, is JSON:
Argo Rollouts takes a body that is not JSON as Successful without evaluating any condition. It
binds 127.0.0.1 unless told otherwise. ``python -m analysis.server --help`` runs it.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from analysis.checks import CheckSet, Side, format_duration, load_checks, parse_duration
from analysis.errors import AnalysisError, ArgumentError
from analysis.judge import Phase, judge
from analysis.prometheus import Prometheus, Source
from analysis.report import as_dict, to_json

log = logging.getLogger("analysis.server")

DEFAULT_PORT = 8090
DEFAULT_PROMETHEUS_URL = "http://127.0.0.1:9090"
_PARAMETERS = ("preview", "active", "window", "service", "checks", "namespace")
DEFAULT_MAX_WINDOW = 3600.0
DEFAULT_MAX_CONCURRENT = 4
DEFAULT_REQUEST_TIMEOUT = 30.0
_MAX_POINTS = 11_000  # Prometheus refuses a range query with more points per series


class WebProvider:
    """Turns a request's query string into a status and a JSON-ready body; no sockets here."""

    def __init__(self, source: Source, checks: CheckSet, *, default_window: float = 300.0,
                 max_window: float = DEFAULT_MAX_WINDOW,
                 max_concurrent: int = DEFAULT_MAX_CONCURRENT) -> None:
        self.source = source
        self.checks = checks
        self.default_window = default_window
        self.max_window = max_window
        self.max_concurrent = max_concurrent
        # Each judgement holds Prometheus queries open; beyond the cap, answer at once rather
        # than queue behind a slow Prometheus.
        self._slots = threading.BoundedSemaphore(max_concurrent)

    def answer(self, path: str, query: str) -> tuple[int, dict[str, Any]]:
        if path == "/healthz":
            return 200, {"status": "ok"}
        if path != "/judge":
            return 404, _error(f"no such path {path!r}; the provider serves /judge and /healthz")
        try:
            args = _arguments(query)
            preview = Side.parse("preview", _required(args, "preview"))
            active = Side.parse("active", _required(args, "active"))
            window = self.default_window
            if "window" in args:
                window = parse_duration(args["window"], what="window")
            if window > self.max_window or window / self.checks.step > _MAX_POINTS:
                raise ArgumentError(
                    f"window {format_duration(window)} is longer than this provider's maximum "
                    f"{format_duration(self.max_window)} (--max-window); want e.g. 5m"
                )
            checks = self.checks
            if "checks" in args:
                checks = checks.select([n.strip() for n in args["checks"].split(",") if n.strip()])
            if not self._slots.acquire(blocking=False):
                return 503, _error(
                    f"busy: {self.max_concurrent} judgements are already running "
                    "(--max-concurrent); measure again later"
                )
            try:
                verdict = judge(self.source, checks, preview=preview, active=active,
                                window=window, service=args.get("service") or None,
                                namespace=args.get("namespace") or None)
            finally:
                self._slots.release()
        except ArgumentError as exc:
            return 400, _error(str(exc))
        body = as_dict(verdict)
        return (503 if verdict.phase is Phase.ERROR else 200), body


def _error(message: str) -> dict[str, Any]:
    return {"phase": str(Phase.ERROR), "message": message}


def _arguments(query: str) -> dict[str, str]:
    try:
        parsed = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query),
                          max_num_fields=20)
    except ValueError as exc:
        raise ArgumentError(f"query string {query[:200]!r} is malformed: {exc}") from exc
    unknown = sorted(set(parsed) - set(_PARAMETERS))
    if unknown:
        raise ArgumentError(
            f"unknown parameter {unknown[0]!r}; known: {', '.join(_PARAMETERS)}"
        )
    repeated = sorted(name for name, values in parsed.items() if len(values) > 1)
    if repeated:
        raise ArgumentError(f"parameter {repeated[0]!r} is given more than once")
    return {name: values[0] for name, values in parsed.items()}


def _required(args: dict[str, str], name: str) -> str:
    value = args.get(name, "")
    if not value:
        raise ArgumentError(f"parameter {name!r} is required (a version like 1.1.0 or a hash)")
    return value


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "bgh-analysis"
    # Headers and body go out in two writes; with Nagle on, a keep-alive client's delayed ACK
    # would hold the body back by ~40 ms.
    disable_nagle_algorithm = True
    def setup(self) -> None:
        super().setup()
        # A deadline on each socket read and write: a client that connects and sends nothing,
        # or dribbles, is dropped (http.server closes on the timeout) instead of holding a
        # thread for ever.
        self.connection.settimeout(self.server.request_timeout)

    def do_GET(self) -> None:
        started = time.perf_counter()
        url = urlsplit(self.path)
        try:
            status, body = self.server.provider.answer(url.path, url.query)
        except Exception as exc:  # a bug: still JSON, and the traceback goes to the log
            log.error("unexpected error on %s:\n%s", self.path, traceback.format_exc())
            status, body = 500, _error(f"internal error ({type(exc).__name__}: {exc}); see the "
                                       "provider's log")
        self._reply(status, body)
        log.info("GET %s -> %d %s in %.0fms", self.path, status, body.get("phase", ""),
                 (time.perf_counter() - started) * 1000)

    def _refuse_method(self) -> None:
        self.send_error(405, f"method {self.command} is not served; use GET")

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _refuse_method

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # http.server writes an HTML page here by default (bad request line, header too long).
        self.close_connection = True
        text = message or HTTPStatus(code).phrase
        self._reply(code, _error(f"{text}" + (f": {explain}" if explain else "")))

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        try:
            data = to_json(body).encode()
        except ValueError:  # a non-finite number slipped through: that is a bug, not a verdict
            log.error("answer for %s is not valid JSON:\n%s", self.path, traceback.format_exc())
            status, data = 500, to_json(_error("internal error: answer not JSON-safe")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], provider: WebProvider, *,
                 request_timeout: float = DEFAULT_REQUEST_TIMEOUT) -> None:
        self.provider = provider
        self.request_timeout = request_timeout
        super().__init__(address, _Handler)


class RunningServer:
    """A provider serving on a background thread; ``url`` has the real port (useful with 0)."""

    def __init__(self, provider: WebProvider, *, host: str = "127.0.0.1", port: int = 0,
                 request_timeout: float = DEFAULT_REQUEST_TIMEOUT) -> None:
        self._server = _Server((host, port), provider, request_timeout=request_timeout)
        self.host, self.port = str(self._server.server_address[0]), self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="analysis-server",
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> RunningServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> RunningServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the provider in the foreground until SIGTERM or Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="python -m analysis.server",
        description="Serve the Argo Rollouts web metric provider (GET /judge).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help="port (default 8090; 0 picks a free one)")
    parser.add_argument(
        "--prometheus-url",
        default=os.environ.get("BGH_PROMETHEUS_URL") or DEFAULT_PROMETHEUS_URL,
        help="Prometheus base URL (default $BGH_PROMETHEUS_URL, else http://127.0.0.1:9090)",
    )
    parser.add_argument("--checks", type=Path, default=None,
                        help="checks file (default: analysis/checks.yaml)")
    parser.add_argument("--window", default="5m", help="window when a request names none")
    parser.add_argument("--max-window", default="1h",
                        help="longest window a request may ask for (default 1h)")
    parser.add_argument("--max-concurrent", type=int, default=DEFAULT_MAX_CONCURRENT,
                        help="judgements at once; more are answered 503 busy (default 4)")
    parser.add_argument("--request-timeout", default="30s",
                        help="how long a client may take to send its request (default 30s)")
    parser.add_argument("--revision", help="ignored: a digest of the sources, so a supervisor "
                        "that compares command lines restarts the server when they change")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        checks = load_checks(args.checks)
        window = parse_duration(args.window, what="--window")
        max_window = parse_duration(args.max_window, what="--max-window")
        request_timeout = parse_duration(args.request_timeout, what="--request-timeout")
        if args.max_concurrent < 1:
            raise ArgumentError(f"--max-concurrent {args.max_concurrent} must be at least 1")
    except AnalysisError as exc:
        print(f"analysis server: {exc}", file=sys.stderr)
        return 2
    prometheus = Prometheus(args.prometheus_url, timeout=checks.query_timeout)
    provider = WebProvider(prometheus, checks, default_window=window, max_window=max_window,
                           max_concurrent=args.max_concurrent)
    try:
        server = _Server((args.host, args.port), provider, request_timeout=request_timeout)
    except OSError as exc:
        print(f"analysis server: cannot listen on {args.host}:{args.port}: {exc.strerror}",
              file=sys.stderr)
        return 1
    host, port = server.server_address[0], server.server_address[1]
    # shutdown() waits for serve_forever to return, so it must not run on the serving thread.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    log.info("listening on http://%s:%d (Prometheus %s, checks %s)", host, port,
             args.prometheus_url, checks.source)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        prometheus.close()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
