"""Latency of draw.py's POST /api/predict, and a load run with concurrent clients.

    python benchmarks/draw_latency.py                          # every model in models/
    python benchmarks/draw_latency.py --model models/a.h5 --model models/b.h5

For each model alone, then for all of them together, a real ``draw.py`` server (a process
of its own, as users run it) answers --requests pictures drawn the way the page sends them
(MNIST test digits traced as pen strokes on a 360x240 pad, PNG), one client at a time:
p50/p95/p99 in milliseconds. Then --clients clients at once send --load-requests pictures
in all to the server with every model: none may be lost or fail. Needs MNIST
($MNIST_DATA or --data).
"""

import argparse
import http.client
import io
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PAD = (360, 240)  # the page's pad, in canvas pixels (index.html)
PEN = 13  # its pen of 18 CSS pixels, in canvas pixels on a laptop


def pad_pictures(count: int, data: str | None) -> list[bytes]:
    """PNGs of traced MNIST test digits, white on black, as the page's pad sends them."""
    from PIL import Image

    from mnistkit.files.data import load_mnist
    from testkit.strokes import render, trace

    mnist = load_mnist(data)
    pictures = []
    for index in range(count):
        digit = render(trace(mnist.test_images[index]), PAD[1], PEN, dark_on_light=False)
        pad = Image.new("L", PAD, 0)
        pad.paste(digit, ((PAD[0] - PAD[1]) // 2 + (index % 7 - 3) * 15, 0))
        buffer = io.BytesIO()
        pad.convert("RGBA").save(buffer, format="PNG")  # a canvas's toBlob gives RGBA
        pictures.append(buffer.getvalue())
    return pictures


def start_server(models: list[Path]) -> tuple[subprocess.Popen, str, int]:
    command = [sys.executable, str(ROOT / "draw.py"), "--port", "0"]
    for model in models:
        command += ["--model", str(model)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in server.stdout:
        if line.startswith("draw digits at http://"):
            host, port = line.split()[3][len("http://"):].rstrip("/").rsplit(":", 1)
            return server, host, int(port)
    raise SystemExit(f"error: draw.py did not start: {server.stderr.read().strip()}")


def post(connection: http.client.HTTPConnection, body: bytes) -> tuple[int, dict]:
    connection.request("POST", "/api/predict", body, {"Content-Type": "image/png"})
    response = connection.getresponse()
    return response.status, json.loads(response.read())


def latencies(host: str, port: int, pictures: list[bytes]) -> np.ndarray:
    connection = http.client.HTTPConnection(host, port, timeout=60)
    for body in pictures[:10]:  # warm up: first calls of each model, caches
        post(connection, body)
    times = []
    for body in pictures:
        start = time.perf_counter()
        status, answer = post(connection, body)
        times.append(time.perf_counter() - start)
        if status != 200:
            raise SystemExit(f"error: the server answered {status}: {answer.get('error')}")
    connection.close()
    return np.array(times) * 1000


def load_run(host: str, port: int, pictures: list[bytes], clients: int, total: int) -> dict:
    """``clients`` threads, each with its own connection, share ``total`` requests."""
    results: list[tuple[int, float]] = []
    lock = threading.Lock()
    counter = iter(range(total))

    def client() -> None:
        connection = http.client.HTTPConnection(host, port, timeout=120)
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                break
            start = time.perf_counter()
            try:
                status, answer = post(connection, pictures[index % len(pictures)])
                ok = status == 200 and len(answer["models"]) > 0
            except (OSError, http.client.HTTPException, ValueError):
                ok = False
                connection.close()
                connection = http.client.HTTPConnection(host, port, timeout=120)
            with lock:
                results.append((ok, time.perf_counter() - start))
        connection.close()

    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    times = np.array([t for _, t in results]) * 1000
    return {"sent": total, "answered": len(results), "ok": sum(ok for ok, _ in results),
            "seconds": wall, "per_second": len(results) / wall,
            "p50": np.percentile(times, 50), "p99": np.percentile(times, 99)}


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (Linux), or NaN where unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def measure(models: list[Path], pictures: list[bytes], label: str) -> None:
    server, host, port = start_server(models)
    try:
        before = cpu_seconds(server.pid)
        times = latencies(host, port, pictures)
        # CPU the server spent per request: what a request costs when the machine is shared
        # and wall-clock latency includes waiting for other people's jobs.
        cpu = (cpu_seconds(server.pid) - before) / (len(pictures) + 10) * 1000
        p50, p95, p99 = np.percentile(times, [50, 95, 99])
        print(f"{label:<22} p50 {p50:6.1f} ms   p95 {p95:6.1f} ms   p99 {p99:6.1f} ms   "
              f"server CPU {cpu:5.1f} ms/request   ({len(times)} requests)", flush=True)
    finally:
        server.terminate()
        server.wait()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, action="append", default=[], metavar="PATH",
                        help="model file (repeatable; default: every model in models/)")
    parser.add_argument("--requests", type=int, default=300, help="per latency run (300)")
    parser.add_argument("--clients", type=int, default=16, help="for the load run (16)")
    parser.add_argument("--load-requests", type=int, default=1000, help="in all (1000)")
    parser.add_argument("--data", default=None, help="MNIST folder (default: $MNIST_DATA)")
    args = parser.parse_args(argv)
    models = args.model or sorted(p for p in (ROOT / "models").glob("*")
                                  if p.suffix in (".h5", ".keras"))
    if not models:
        print("error: no models in models/; train one or pass --model", file=sys.stderr)
        return 2
    pictures = pad_pictures(args.requests, args.data)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"POST /api/predict, one client, {args.requests} pad drawings (360x240 PNG); "
          f"{os.cpu_count()} CPUs, load average {load:.1f} before:")
    for model in models:
        measure([model], pictures, model.name)
    if len(models) > 1:
        measure(models, pictures, f"all {len(models)} together")
    server, host, port = start_server(models)
    try:
        result = load_run(host, port, pictures, args.clients, args.load_requests)
    finally:
        server.terminate()
        server.wait()
    lost = result["sent"] - result["ok"]
    print(f"load: {args.clients} clients, {result['sent']} requests, {len(models)} model(s): "
          f"{result['ok']} answered 200, {lost} lost or failed, {result['seconds']:.1f} s "
          f"({result['per_second']:.0f}/s), p50 {result['p50']:.0f} ms, p99 {result['p99']:.0f} ms")
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
