#!/usr/bin/env bash
# Gradescope runs this once, as root, while it builds the autograder image. Written by
# `grader gradescope bundle` for the assignment {{ assignment }}.
# AUTOGRADER_ROOT (default /autograder) lets the bundle be tried in a directory laid out the same.
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
SRC="$(cd "$(dirname "$0")" && pwd)"
export DEBIAN_FRONTEND=noninteractive

python=""
for candidate in python3.13 python3.12 python3.11; do
  if command -v "$candidate" >/dev/null && "$candidate" -c "import venv, ensurepip" 2>/dev/null; then
    python="$candidate"; break
  fi
done
packages=()
[ -n "$python" ] || { packages+=(python3.11 python3.11-venv); python=python3.11; }
{% if postgres %}# local mode's throwaway database cluster runs the machine's PostgreSQL binaries
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || packages+=(postgresql)
{% endif %}if [ ${#packages[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${packages[@]}" git ca-certificates
fi

"$python" -m venv "$ROOT/venv"
"$ROOT/venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$SRC"

{% if reference %}# Grade the reference solution once: it installs (and caches) the reference's virtual
# environment and its answers, and proves the autograder works before any student submits.
"$ROOT/venv/bin/grader" grade "$SRC/{{ reference }}" --assignment "$SRC/{{ spec }}" \
  --runtime local --out "$ROOT/setup-check" --seed {{ seed }}
{% endif %}