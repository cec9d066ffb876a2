#!/usr/bin/env bash
# One entry point for a fresh machine with Python 3.11+:
#   ./run.sh [--config PATH] [--dry-run]   run the bot (installs what it needs into .venv first)
#   ./run.sh doctor | generate ...          the other hailuo-bot commands
#   ./run.sh test                           lint, type-check and run the whole test suite
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

stamp="$VIRTUAL_ENV/.hailuo-installed"
sum="$(cksum < pyproject.toml | cut -d' ' -f1)"
have="$(cat "$stamp" 2>/dev/null || true)"
case "$have" in
  "$sum-1") install=0 ;;
  "$sum-0") install=$need_test_extra ;;
  *) install=1 ;;
esac
if [ "$install" = 1 ]; then
  extra=""
  [ "$need_test_extra" = 1 ] && extra="[test]"
  echo "run.sh: installing hailuo-bot$extra into $VIRTUAL_ENV ..." >&2
  python -m pip install --quiet --disable-pip-version-check -e ".$extra"
  echo "$sum-$need_test_extra" > "$stamp"
fi

if [ "${1:-}" = "test" ]; then
  shift
  ruff check bot cogs tests bench
  ruff format --check bot cogs tests bench
  mypy
  exec python -m pytest -q -p no:cacheprovider "$@"
fi
exec hailuo-bot "$@"
