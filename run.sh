#!/usr/bin/env bash
# One entry point for a fresh machine with Python 3.11+:
#   ./run.sh [--config PATH] [--dry-run]   run the bot (installs what it needs into .venv first)
#   ./run.sh doctor | generate ...          the other hailuo-bot commands
#   ./run.sh test                           lint, type-check and run the whole test suite
# With a virtualenv already active (VIRTUAL_ENV set) it uses that one instead of .venv. It installs only when
# pyproject.toml's requirements are not met there, so a second start (or a test run) never reinstalls.
set -euo pipefail
cd "$(dirname "$0")"

need_test_extra=0
[ "${1:-}" = "test" ] && need_test_extra=1

if [ -z "${VIRTUAL_ENV:-}" ]; then
  PY="${PYTHON:-python3}"
  if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "run.sh: Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)" >&2
    exit 1
  fi
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  # shellcheck disable=SC1091
  . .venv/bin/activate
fi
if ! python -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "run.sh: the virtualenv at $VIRTUAL_ENV has Python older than 3.11; deactivate it or make a new one" >&2
  exit 1
fi

# Are pyproject.toml's requirements (and the test extra, for `test`) installed at versions it allows?
requirements_met() {
  python - "$need_test_extra" <<'EOF'
import importlib.metadata as md
import sys
import tomllib

try:
    from packaging.requirements import Requirement
except ImportError:  # a bare venv: pip carries its own copy
    try:
        from pip._vendor.packaging.requirements import Requirement
    except ImportError:
        sys.exit(1)
with open("pyproject.toml", "rb") as f:
    project = tomllib.load(f)["project"]
wanted = list(project["dependencies"])
if sys.argv[1] == "1":
    wanted += project["optional-dependencies"]["test"]
for text in wanted:
    req = Requirement(text)
    try:
        version = md.version(req.name)
    except md.PackageNotFoundError:
        sys.exit(1)
    if not req.specifier.contains(version, prereleases=True):
        sys.exit(1)
EOF
}

# The stamp (pyproject's checksum + whether the test extra is in) skips even that check on the next start.
stamp="$VIRTUAL_ENV/.hailuo-installed"
sum="$(cksum < pyproject.toml | cut -d' ' -f1)"
have="$(cat "$stamp" 2>/dev/null || true)"
if [ "$have" != "$sum-1" ] && [ "$have" != "$sum-$need_test_extra" ]; then
  if ! requirements_met; then
    extra=""
    [ "$need_test_extra" = 1 ] && extra="[test]"
    echo "run.sh: installing hailuo-bot$extra into $VIRTUAL_ENV ..." >&2
    python -m pip install --quiet --disable-pip-version-check -e ".$extra"
  fi
  echo "$sum-$need_test_extra" > "$stamp" 2>/dev/null || true
fi

if [ "${1:-}" = "test" ]; then
  shift
  ruff check bot cogs tests bench
  ruff format --check bot cogs tests bench
  mypy
  exec python -m pytest -q -p no:cacheprovider "$@"
fi
# `python -m bot` is the `hailuo-bot` command, always from this checkout (also when it is not pip-installed).
exec python -m bot "$@"
