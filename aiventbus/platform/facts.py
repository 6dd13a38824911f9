"""System facts for the knowledge store (`system.*`): the only place that names an OS for them."""

from __future__ import annotations

import os
import platform
import re
import shutil
import socket
import subprocess
from typing import Any

PROBE_TIMEOUT_SECONDS = 5.0
NONE_DETECTED = "none detected"


def _run(command: list[str]) -> str | None:
    """stdout of a short probe without a shell, or None when it is missing, fails or hangs."""
    if shutil.which(command[0]) is None:
        return None
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=PROBE_TIMEOUT_SECONDS, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout[:65_536] if result.returncode == 0 else None


def gpus_from_nvidia_smi(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines() if line.strip()]


def gpus_from_lspci(output: str) -> list[str]:
    """`01:00.0 VGA compatible controller: NVIDIA ...` -> `NVIDIA ...`, for display-class devices."""
    found = []
    for line in output.splitlines():
        match = re.match(r"^\S+\s+(VGA compatible controller|3D controller|Display controller):\s*(.+)$", line)
        if match:
            found.append(match.group(2).strip())
    return found


def gpus_from_system_profiler(output: str) -> list[str]:
    return [m.strip() for m in re.findall(r"Chipset Model:\s*(.+)", output)]


def detect_gpu(system: str) -> str:
    """GPU names joined by '; ', or 'none detected'."""
    if (out := _run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"])) and (
        found := gpus_from_nvidia_smi(out)
    ):
        return "; ".join(found)
    if system == "darwin":
        out = _run(["system_profiler", "SPDisplaysDataType"])
        found = gpus_from_system_profiler(out or "")
    else:
        out = _run(["lspci"])
        found = gpus_from_lspci(out or "")
    return "; ".join(found) if found else NONE_DETECTED


def memory_bytes(system: str) -> int | None:
    if system == "darwin":
        out = _run(["sysctl", "-n", "hw.memsize"])
        return int(out.strip()) if out and out.strip().isdigit() else None
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def os_release(system: str) -> str:
    """A human name of the OS version: PRETTY_NAME on Linux, the product version on macOS."""
    if system == "darwin":
        return f"macOS {platform.mac_ver()[0]}".strip()
    try:
        with open("/etc/os-release", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return f"{platform.system()} {platform.release()}"


def collect_system_facts() -> dict[str, Any]:
    """Every `system.*` fact; blocking (runs short probes), so call it in a thread."""
    system = platform.system().lower()
    facts: dict[str, Any] = {
        "system.os": system,
        "system.os_release": os_release(system),
        "system.kernel": platform.release(),
        "system.arch": platform.machine(),
        "system.hostname": socket.gethostname(),
        "system.cpu_count": os.cpu_count() or 1,
        "system.python": platform.python_version(),
        "system.gpu": detect_gpu(system),
    }
    if (total := memory_bytes(system)) is not None:
        facts["system.memory_bytes"] = total
    return facts
