#!/usr/bin/env bash
# Idempotent install of ArcadeDB (a real Bolt + Cypher server, with a bundled Java runtime)
# into the project venv, for the graph-store tests and `r2rec bench graph`.
#   bash scripts/setup_arcadedb.sh        # no-op when the pinned version is already installed
# Neo4j itself is not installable on these machines; tests/harness/arcadedb.py starts this
# server on free loopback ports. Production uses the neo4j:5 image instead.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${R2REC_VENV:-.venv}
PIN="arcadedb-embedded==26.10.2.post1"
want=${PIN#*==}
have=$("$VENV/bin/python" -m pip --disable-pip-version-check show arcadedb-embedded 2>/dev/null \
  | sed -n 's/^Version: //p' || true)
if [ "$have" = "$want" ]; then
  exit 0
fi
echo "[setup_arcadedb] installing $PIN into $VENV"
"$VENV/bin/python" -m pip --disable-pip-version-check -q install --no-deps "$PIN"
echo "[setup_arcadedb] done"
