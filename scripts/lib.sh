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
    quiet_pip install --upgrade pip
  fi
}

# pip with its output kept in a log: shown (the end of it) only when pip fails.
quiet_pip() {
  local log="$VENV/pip.log"
  if ! "$VENV/bin/python" -m pip --disable-pip-version-check --no-input "$@" >"$log" 2>&1; then
    tail -n 25 "$log" >&2
    echo "pip $1 failed; the whole output is in $log" >&2
    return 1
  fi
}

# What the last install was made from: pyproject.toml, the extras and the venv's interpreter. An editable install
# follows source edits by itself; only a change to these needs pip again.
install_stamp() {
  "$VENV/bin/python" - "$ROOT/pyproject.toml" "$1" <<'PY'
import hashlib, sys
digest = hashlib.sha256(open(sys.argv[1], "rb").read())
digest.update(f"\0{sys.argv[2]}\0{sys.executable}\0{sys.version}".encode())
print(digest.hexdigest())
PY
}

# Install the project (with extras, e.g. "[dev]") into the venv unless the install is current. The dev install
# includes the plain one, so scripts/run after scripts/test does not run pip again.
ensure_installed() {
  local extras="${1:-}" stamp_file="$VENV/.aiventbus-installed" wanted current="" candidate
  wanted="$(install_stamp "$extras")"
  [ -f "$stamp_file" ] && current="$(cat "$stamp_file")"
  if [ -x "$VENV/bin/aibus" ]; then
    for candidate in "$extras" "[dev]"; do
      [ "$current" = "$(install_stamp "$candidate")" ] && return 0
    done
  fi
  echo "installing aiventbus$extras into $VENV (once; again only when pyproject.toml changes)" >&2
  quiet_pip install --quiet -e "$ROOT$extras"
  echo "$wanted" >"$stamp_file"
}

# Make `aibus` (and `aiventbus`) runnable from any shell: a symlink in ~/.local/bin when that is on PATH,
# otherwise one line saying how. Silent when the shell already finds ours.
link_commands() {
  local bin_dir="$HOME/.local/bin" name
  [ "$(command -v aibus 2>/dev/null)" = "$bin_dir/aibus" ] && [ "$(readlink "$bin_dir/aibus")" = "$VENV/bin/aibus" ] && return 0
  [ "$(command -v aibus 2>/dev/null)" = "$VENV/bin/aibus" ] && return 0
  case ":$PATH:" in
    *":$bin_dir:"*)
      mkdir -p "$bin_dir"
      for name in aibus aiventbus; do
        if [ -e "$bin_dir/$name" ] && [ ! -L "$bin_dir/$name" ]; then
          echo "note: $bin_dir/$name is not a link made by scripts/run, so it was left alone ($VENV/bin/$name is ours)" >&2
          continue
        fi
        ln -sfn "$VENV/bin/$name" "$bin_dir/$name"
      done
      echo "aibus is ready: $bin_dir/aibus -> $VENV/bin/aibus" >&2
      ;;
    *)
      echo "to run aibus from any shell: export PATH=\"$VENV/bin:\$PATH\" (or put ~/.local/bin on PATH and run scripts/run again)" >&2
      ;;
  esac
}
