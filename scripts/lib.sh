# Shared by scripts/run and scripts/test: pick a Python and make the project's venv.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${AIVENTBUS_VENV:-$ROOT/.venv}"

# sqlite-vec needs a sqlite3 module that can load extensions; some builds (pyenv's default) cannot.
python_can_load_extensions() {
  "$1" - <<'PY' 2>/dev/null
import sqlite3, sys
if sys.version_info < (3, 11):
    raise SystemExit(1)
sqlite3.connect(":memory:").enable_load_extension(True)
PY
}

pick_python() {
  local candidate
  for candidate in "${AIVENTBUS_PYTHON:-}" python3 /usr/bin/python3 python3.12 python3.11; do
    [ -n "$candidate" ] || continue
    command -v "$candidate" >/dev/null 2>&1 || continue
    if python_can_load_extensions "$candidate"; then
      echo "$candidate"
      return 0
    fi
  done
  for candidate in python3 /usr/bin/python3; do
    if command -v "$candidate" >/dev/null 2>&1; then
      echo "$candidate"
      return 0
    fi
  done
  echo "no Python 3.11+ found: apt-get install python3 python3-venv" >&2
  return 1
}

ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    "$(pick_python)" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
  fi
}
