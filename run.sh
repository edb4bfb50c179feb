#!/usr/bin/env bash
# One entry point that sets everything up on a fresh machine (Python 3.11 + pip) and runs a job:
#   ./run.sh parity [ARGS]   the parity report over the built-in catalogue (dualnet parity ARGS)
#   ./run.sh test [ARGS]     the test-suite (pytest ARGS)
#   ./run.sh bench [ARGS]    the benchmarks (dualnet bench ARGS)
# The virtual environment .venv is created on first use and reused; it is reinstalled only when
# pyproject.toml or the requirements file change. DUALNET_REQUIREMENTS picks the framework builds
# (default requirements/cpu.txt; requirements/cuda.txt for NVIDIA GPUs).
set -euo pipefail
cd "$(dirname "$0")"

job="${1:-}"
[ $# -gt 0 ] && shift
case "$job" in
  parity|test|bench) ;;
  *) echo "usage: ./run.sh {parity|test|bench} [ARGS...]" >&2; exit 2 ;;
esac

python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3
requirements="${DUALNET_REQUIREMENTS:-requirements/cpu.txt}"
venv=.venv
stamp="$venv/.dualnet-installed"
want="$(cat pyproject.toml "$requirements" | sha256sum | cut -d' ' -f1) $requirements"

if [ ! -x "$venv/bin/python" ]; then
  echo "== creating $venv with $("$python" --version)" >&2
  "$python" -m venv "$venv"
fi
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "== installing dualnet and $requirements into $venv (first run takes a minute or two)" >&2
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet -r "$requirements" -e ".[test]"
  echo "$want" > "$stamp"
fi

case "$job" in
  parity) exec "$venv/bin/dualnet" parity --json parity-report.json "$@" ;;
  test) exec "$venv/bin/python" -m pytest -q -n auto "$@" ;;
  bench) exec "$venv/bin/dualnet" bench "$@" ;;
esac
