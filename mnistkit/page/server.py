"""The HTTP side of draw.py: the page, its files, and ``POST /api/predict``.

Python's own http.server (ThreadingHTTPServer: a thread per connection) is all this needs:
one page, one JSON endpoint, on the user's own machine. Every bad request gets a 4xx with
``{"error": "..."}`` and the server goes on serving.
"""

from __future__ import annotations

import json
import mimetypes
import re
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from mnistkit.files.records import test_accuracy
from mnistkit.page.answers import DEADLINE, answer, ranked
from mnistkit.prepare.pictures import ImageError
from mnistkit.read.loading import ModelError

PAGE_DIR = Path(__file__).resolve().parent / "static"
MAX_BODY = 4 * 1024 * 1024  # a photo from a phone fits; anything larger is refused unread
PAGE_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # the page's own files' names
LENGTH = re.compile(r"[0-9]{1,12}")  # str.isdigit() also takes "²", which int() refuses


class DrawServer(ThreadingHTTPServer):
    daemon_threads = True  # Ctrl-C need not wait for a browser's idle keep-alive connection
    request_queue_size = 64  # bursts of clients queue instead of being refused

    def __init__(self, address: tuple[str, int], host, reader,
                 deadline: float = DEADLINE) -> None:
        self.host, self.reader = host, reader  # the models' workers, the pictures' worker
        self.deadline = deadline  # seconds an answer waits for the models (answers.DEADLINE)
        super().__init__(address, PageRequestHandler)

    def handle_error(self, request, client_address) -> None:
        """One line, not a traceback: a client that hung up is no news."""
        error = sys.exc_info()[1]
        if not isinstance(error, ConnectionError | TimeoutError):
            print(f"draw.py: a request from {client_address[0]} failed: "
                  f"{type(error).__name__}: {error}", file=sys.stderr)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}/"


class PageRequestHandler(BaseHTTPRequestHandler):
    server: DrawServer
    protocol_version = "HTTP/1.1"  # keep-alive: the page sends many small requests
    # Headers and body go out in two writes; with Nagle's algorithm on, the body then waits
    # for the client's delayed ACK: 40 ms added to every answer.
    disable_nagle_algorithm = True

    # A garbled request line is answered with a status line too, not as HTTP/0.9 (body only).
    default_request_version = "HTTP/1.0"

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (a bad request line, headers too long) as JSON too."""
        self.close_connection = True
        self._error(HTTPStatus(code), message or HTTPStatus(code).phrase)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        pass  # a line per request would bury the address the user needs to read

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = urlsplit(self.path).path
        if path == "/api/models":
            self._send_json(HTTPStatus.OK, {"models": [
                {"file": m.path, "accuracy": test_accuracy(m.record), "params": m.params,
                 "error": m.error, "loading": m.loading}
                for m in ranked(self.server.host.models)]})
        elif path.startswith("/api/"):
            self._error(HTTPStatus.METHOD_NOT_ALLOWED if path == "/api/predict"
                        else HTTPStatus.NOT_FOUND, f"use POST for {path}"
                        if path == "/api/predict" else f"no such endpoint: {path}")
        else:
            self._send_static(path)

    def do_HEAD(self) -> None:  # noqa: N802
        self._error(HTTPStatus.METHOD_NOT_ALLOWED, "use GET or POST")

    def do_POST(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        if path != "/api/predict":
            self._discard_body()
            self._error(HTTPStatus.NOT_FOUND, f"no such endpoint: {path} "
                        "(POST a picture to /api/predict)")
            return
        length = self.headers.get("Content-Length")
        if length is None or not LENGTH.fullmatch(length.strip()):
            self.close_connection = True
            self._error(HTTPStatus.LENGTH_REQUIRED, "send the picture with a Content-Length")
            return
        if int(length) > MAX_BODY:
            self.close_connection = True  # the body is left unread: this connection is done
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                        f"the picture is {int(length):,} bytes; at most {MAX_BODY:,} are read")
            return
        body = self.rfile.read(int(length))
        try:
            result = answer(self.server.host, self.server.reader, body, self.server.deadline)
        except ImageError as error:
            status = (HTTPStatus.REQUEST_ENTITY_TOO_LARGE if "too many pixels" in str(error)
                      else HTTPStatus.UNPROCESSABLE_ENTITY if "no digit" in str(error)
                      else HTTPStatus.BAD_REQUEST)
            self._error(status, str(error))
            return
        except ModelError as error:  # a model's worker died or timed out (ModelHost)
            self._error(HTTPStatus.SERVICE_UNAVAILABLE, f"a model failed: {error}")
            return
        except Exception as error:  # a bug must not leave the browser waiting for an answer
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(error).__name__}: {error}")
            print(f"draw.py: POST /api/predict failed: {type(error).__name__}: {error}",
                  file=sys.stderr)
            return
        self._send_json(HTTPStatus.OK, result)

    def do_PUT(self) -> None:  # noqa: N802
        self._discard_body()
        self._error(HTTPStatus.METHOD_NOT_ALLOWED, "use GET or POST")

    do_DELETE = do_PATCH = do_OPTIONS = do_PUT

    def _send_static(self, path: str) -> None:
        """A file of the page's own folder, by its plain name: nothing else is reachable."""
        name = unquote(path).lstrip("/") or "index.html"
        target = PAGE_DIR / name
        if not PAGE_FILE.fullmatch(name) or not target.is_file():
            self._error(HTTPStatus.NOT_FOUND, f"no such page: {path}")
            return
        kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        self._send(HTTPStatus.OK, target.read_bytes(),
                   f"{kind}; charset=utf-8" if kind.startswith("text/") else kind)

    def _discard_body(self) -> None:
        length = self.headers.get("Content-Length", "0").strip()
        if LENGTH.fullmatch(length) and int(length) <= MAX_BODY:
            self.rfile.read(int(length))
        else:
            self.close_connection = True

    def _error(self, status: HTTPStatus, message: str) -> None:
        self._send_json(status, {"error": message})

    def _send_json(self, status: HTTPStatus, data: dict) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _send(self, status: HTTPStatus, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


def serve_in_thread(host, reader, address: str = "127.0.0.1", port: int = 0,
                    deadline: float = DEADLINE) -> DrawServer:
    """Start a server in a background thread (tests, benchmarks); ``.shutdown()`` stops it."""
    server = DrawServer((address, port), host, reader, deadline)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
