"""POST /api/v1/events under load from a separate process (wrk), against the daemon's cheapest route as baseline.

Run: .venv/bin/python scripts/bench/http.py [--connections 32] [--seconds 10]
Target (2 cores): >= 1,500 req/s with p99 <= 30 ms at 32 connections.
The baseline is the same load on a request the guard answers itself (401 without a token): the floor of the
HTTP stack, so the ratio shows what the bus adds.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named http.py: keep its folder off sys.path so `import http` finds the standard library.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import os
import re
import shutil
import subprocess
import tempfile
import time

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[2]

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
counter = 0
request = function()
  counter = counter + 1
  return wrk.format(nil, nil, nil,
    '{"topic":"bench.http","payload":{"message":"401 Unauthorized","path":"/admin","n":' .. counter .. '}}')
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%.0f %%.0f %%d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), summary.errors.status))
end
"""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_wrk(url: str, script: Path, connections: int, seconds: int) -> dict[str, float]:
    output = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) (\d+)", output)
    if match is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    requests, duration_us, p50_us, p99_us, bad_status = (int(g) for g in match.groups())
    return {
        "rps": requests / (duration_us / 1e6),
        "p50_ms": p50_us / 1000,
        "p99_ms": p99_us / 1000,
        "non_2xx": bad_status,
        "requests": requests,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        port = free_port()
        config = {
            "server": {"port": port},
            "paths": {"data_dir": str(directory / "data"), "state_dir": str(directory / "state")},
            "producers": {"clipboard_enabled": False},
            "memory": {"distill_enabled": False},
        }
        config_path = directory / "config.yaml"
        config_path.write_text(yaml.safe_dump(config))
        daemon = subprocess.Popen(
            [sys.executable, "-m", "aiventbus", "--config", str(config_path), "--log-level", "WARNING"],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if httpx.get(base + "/api/v1/system/status", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            token = (directory / "data" / "api-token").read_text().strip()
            publish_script = directory / "publish.lua"
            publish_script.write_text(LUA % token)
            floor_script = directory / "floor.lua"
            floor_script.write_text(LUA % "wrong-token")
            run_wrk(base + "/api/v1/events", publish_script, args.connections, 2)  # warm-up
            publish = run_wrk(base + "/api/v1/events", publish_script, args.connections, args.seconds)
            floor = run_wrk(base + "/api/v1/events", floor_script, args.connections, args.seconds)
        finally:
            daemon.terminate()
            daemon.wait(30)
    print(f"wrk -t2 -c{args.connections} -d{args.seconds}s")
    print(
        f"POST /api/v1/events: {publish['rps']:,.0f} req/s  p50 {publish['p50_ms']:.1f} ms"
        f"  p99 {publish['p99_ms']:.1f} ms  non-2xx {publish['non_2xx']}"
    )
    print(f"floor (401 from the guard): {floor['rps']:,.0f} req/s  p99 {floor['p99_ms']:.1f} ms")
    print(f"publish/floor throughput ratio: {publish['rps'] / floor['rps']:.2f}")
    ok = publish["rps"] >= 1500 and publish["p99_ms"] <= 30 and publish["non_2xx"] == 0
    print(f"target >= 1,500 req/s and p99 <= 30 ms: {'met' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
