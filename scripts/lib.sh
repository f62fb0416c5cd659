# Shared shell helpers for scripts/run and scripts/test. Source it; do not run it.
# The virtualenv lives in .venv and is rebuilt only when pyproject.toml or the extras change.

VENV="${NOVACRON_VENV:-$PWD/.venv}"

die() { echo "novacron: $*" >&2; exit 2; }

pick_python() {
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  die "Python 3.11 or newer is needed (found: $(python3 --version 2>&1 || echo none))"
}

apt_install() {
  # Install Debian packages that are missing; needs root. Quiet unless something fails.
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "novacron: missing Debian packages (${missing[*]}); run as root to install them" >&2
    return 1
  fi
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_venv() {
  # ensure_venv EXTRAS: create .venv and install the project with the given extras (e.g. "dev,real").
  local extras="$1" py stamp want
  py=$(pick_python)
  if [ ! -x "$VENV/bin/python" ]; then
    "$py" -m venv "$VENV" 2>/dev/null || {
      apt_install python3-venv || die "cannot create a virtualenv: install python3-venv"
      rm -rf "$VENV"; "$py" -m venv "$VENV"
    }
  fi
  stamp="$VENV/.novacron-installed"
  want="$(cat pyproject.toml | sha256sum | cut -c1-16) $extras"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "installing NovaCron into $VENV (extras: ${extras:-none})"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
    local spec="."
    [ -n "$extras" ] && spec=".[$extras]"
    # pip's and setuptools' chatter goes to a log, shown only when the install fails.
    if ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$spec" >"$VENV/pip-install.log" 2>&1 ||
       ! "$VENV/bin/python" -c 'import novacron' 2>>"$VENV/pip-install.log"; then
      grep -v -E "^WARNING: Location .* is ignored" "$VENV/pip-install.log" | tail -40 >&2
      die "installing NovaCron into $VENV failed (full log: $VENV/pip-install.log)"
    fi
    echo "$want" > "$stamp"
  fi
}
