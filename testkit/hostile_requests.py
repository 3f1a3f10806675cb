"""Hostile inputs around the model files (issue 29), second part: malformed HTTP requests
sent raw to a running draw.py, and clients that hang up before the answer. Each case is
judged as in testkit.hostile, with one more failure: no response (a request the page never
answers)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess

from testkit.hostile import PYTHON, ROOT, Kit, Result

REQUESTS = {
    "Content-Length ²": b"POST /api/predict HTTP/1.1\r\nContent-Length: \xc2\xb2\r\n\r\n",
    "Content-Length 10**20": b"POST /api/predict HTTP/1.1\r\nContent-Length: " + b"9" * 21
                             + b"\r\n\r\n",
    "GET /%00": b"GET /%00 HTTP/1.1\r\n\r\n",
    "GET raw NUL": b"GET /a\x00b HTTP/1.1\r\n\r\n",
    "GET 300 characters": b"GET /" + b"x" * 300 + b" HTTP/1.1\r\n\r\n",
    "GET the package's code": b"GET /server.py HTTP/1.1\r\n\r\n",
    "GET ../": b"GET /../answers.py HTTP/1.1\r\n\r\n",
    "POST empty body": b"POST /api/predict HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    "POST not a picture": b"POST /api/predict HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
    "garbage request line": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
}


def sweep_requests(kit: Kit) -> list[Result]:
    """Malformed requests sent raw to a running draw.py, then clients that hang up: every
    request gets a status line, and the console shows no traceback."""
    process = subprocess.Popen([PYTHON, str(ROOT / "draw.py"), "--model",
                                str(kit.models["logreg.h5"]), "--pixels", "0-1", "--port", "0"],
                               cwd=kit.work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        port, console = None, []
        while process.poll() is None and port is None:
            console.append(process.stdout.readline().decode(errors="replace"))
            if "http://" in console[-1]:
                port = int(console[-1].split("http://")[1].split("/")[0].rsplit(":", 1)[1])
        if port is None:
            return [Result("requests", "start draw.py", "no message", "".join(console)[-200:])]
        results = [Result("requests", name, *_ask(port, raw)) for name, raw in REQUESTS.items()]
        for _ in range(50):  # clients that hang up before the answer
            with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
                connection.sendall(b"GET / HTTP/1.1\r\n\r\n")
        outcome, detail = _ask(port, b"GET / HTTP/1.1\r\n\r\n")
        results.append(Result("requests", "50 clients hang up, then one asks", outcome, detail))
    finally:
        process.send_signal(signal.SIGINT)
        out = process.communicate(timeout=60)[0].decode(errors="replace")
    if "Traceback" in out:
        results.append(Result("requests", "console", "traceback", out.strip()[-200:]))
    return results


def _ask(port: int, raw: bytes) -> tuple[str, str]:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
            connection.sendall(raw)
            answer = connection.recv(4096)
    except OSError as error:
        return "no response", str(error)
    status = answer.split(b"\r\n", 1)[0].decode(errors="replace")
    if not status.startswith("HTTP/1."):
        return "no response", repr(answer[:80])
    code = int(status.split()[1])
    return ("evaluated" if code < 400 else "refused" if code < 500 else "traceback"), status
