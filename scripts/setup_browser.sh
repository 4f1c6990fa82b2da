#!/usr/bin/env bash
# Installs a real headless browser for the inspection page's test: Debian's chromium and
# chromium-driver (selenium drives them; playwright's own browser download is not used).
#   bash scripts/setup_browser.sh
# Skips at once when both are on PATH.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
echo "[setup] installing chromium and chromium-driver"
$SUDO apt-get update -q >/dev/null
$SUDO apt-get install -y -q --no-install-recommends chromium chromium-driver >/dev/null
command -v chromium >/dev/null && command -v chromedriver >/dev/null
