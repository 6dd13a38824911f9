"""Idle cost of the daemon with the clipboard (xclip polling under Xvfb) and file watcher on, against a baseline
with every producer off: CPU (% of one core, daemon + its helper children), peak RSS, and start-up time.

Run: .venv/bin/python scripts/bench/idle.py [--seconds 25]
Targets: idle CPU <= 1% of a core, RSS <= 150 MB.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Keep this folder (which holds http.py) off sys.path so `import http` finds the standard library.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Any

import httpx
import yaml

TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(own, own + reaped children) CPU seconds of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return (utime + stime) / TICKS, (utime + stime + cutime + cstime) / TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children_rss_mb(pid: int) -> float:
    """RSS of the daemon's live helper processes (e.g. the clipboard change notifier)."""
    total = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            with contextlib.suppress(OSError):
                total += rss_mb(int(child))
    return total


def start_xvfb() -> tuple[subprocess.Popen[bytes], str]:
    read_fd, write_fd = os.pipe()
    process = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "640x480x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as reader:
        return process, ":" + reader.readline().decode().strip()


def run_case(name: str, root: Path, producers: dict[str, Any], env: dict[str, str], seconds: float) -> dict[str, Any]:
    port = free_port()
    folder = root / name
    folder.mkdir()
    config = {
        "server": {"port": port},
        "paths": {"data_dir": str(folder / "data"), "state_dir": str(folder / "state")},
        "producers": producers,
        "memory": {"distill_enabled": False},
    }
    config_path = folder / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "aiventbus", "--config", str(config_path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(folder / "daemon.log").open("wb"),
    )
    try:
        status: dict[str, Any] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{name}: daemon exited: {(folder / 'daemon.log').read_text()[-1000:]}")
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/api/v1/system/status", timeout=1)
                if response.status_code == 200:
                    status = response.json()
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
        startup = time.perf_counter() - started
        time.sleep(3)  # let start-up work (imports, first polls) finish before measuring idle
        own0, all0 = cpu_seconds(process.pid)
        wall0 = time.monotonic()
        peak = children_peak = 0.0
        while time.monotonic() - wall0 < seconds:
            peak = max(peak, rss_mb(process.pid))
            children_peak = max(children_peak, children_rss_mb(process.pid))
            time.sleep(1)
        own1, all1 = cpu_seconds(process.pid)
        wall = time.monotonic() - wall0
        token = (folder / "data" / "api-token").read_text().strip()
        report = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/producers", headers={"Authorization": f"Bearer {token}"}, timeout=5
        ).json()
        states = {p["name"]: p["state"] for p in report["producers"] if p["enabled"]}
        return {
            "case": name,
            "startup_seconds": round(startup, 3),
            "status": status.get("status"),
            "cpu_percent_daemon": round(100 * (own1 - own0) / wall, 2),
            "cpu_percent_with_children": round(100 * (all1 - all0) / wall, 2),
            "rss_peak_mb": round(peak, 1),
            "rss_helpers_peak_mb": round(children_peak, 1),
            "producers_running": states,
        }
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=25.0, help="idle window measured per case")
    args = parser.parse_args()
    for program in ("Xvfb", "xclip"):
        if shutil.which(program) is None:
            raise SystemExit(f"{program} not found: apt install xvfb xclip")
    xvfb, display = start_xvfb()
    try:
        env = {k: v for k, v in os.environ.items() if k != "WAYLAND_DISPLAY"}
        env["DISPLAY"] = display
        with tempfile.TemporaryDirectory(prefix="aibus-idle-") as directory:
            root = Path(directory)
            (root / "watched").mkdir()
            off = {"clipboard_enabled": False}
            on = {
                "clipboard_enabled": True,
                "file_watcher_enabled": True,
                "file_watcher_paths": [str(root / "watched")],
            }
            polling = {**on, "clipboard_x11_change_events": False}
            results = [
                run_case("baseline", root, off, env, args.seconds),
                run_case("clipboard+files", root, on, env, args.seconds),
                run_case("clipboard(polling)+files", root, polling, env, args.seconds),
            ]
    finally:
        xvfb.terminate()
        xvfb.wait(10)
    for result in results:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
