#!/usr/bin/env bash
# The self-check CI runs (GitHub: .github/workflows/grade.yml; GitLab: .gitlab-ci.yml) and you can run
# too: install the course's grader, grade this repository's visible checks, write .grader-report/
# and a Markdown summary (GitHub's job summary; elsewhere .grader-report/summary.md).
#   GRADER_REPO  the grader's git URL, or a folder holding it (required unless `grader` is installed)
#   GRADER_REF   branch or tag to install (default: main)
# Exit code: grader check's — 0 all visible checks pass, 1 some fail, 2 the check could not run.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${GRADER_REPO:-}" ]; then
  src="$GRADER_REPO"
  if [ ! -d "$src" ]; then
    src="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/api-grader"
    rm -rf "$src"
    git clone --quiet --depth 1 --branch "${GRADER_REF:-main}" "$GRADER_REPO" "$src"
  fi
  python -m pip install --quiet --disable-pip-version-check -e "$src"
elif ! command -v grader >/dev/null; then
  # "::error::" makes the line an annotation on GitHub; elsewhere (GitLab) it would be noise
  echo "${GITHUB_ACTIONS:+::error::}set GRADER_REPO (a CI variable of the repository, group or organisation) to the course grader's git URL" >&2
  exit 2
fi

out=.grader-report
mkdir -p "$out"
exec grader check . --out "$out" --junit "$out/junit.xml" --markdown "${GITHUB_STEP_SUMMARY:-$out/summary.md}"
