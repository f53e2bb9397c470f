#!/usr/bin/env bash
# Organisation-scale benchmark: create N member accounts and assign a permission set in all of
# them with `runbook run`, with a sequential boto3 script, and with an aws-cli loop; straight to
# moto and through a proxy that adds 50 ms to every request.
#
# usage: benches/fanout.sh [N]        (N defaults to 200; aws-cli runs 20 accounts and is scaled)
#        benches/fanout.sh --scaling  (runbook alone at N = 200 and 1000: journal cost per item, RSS)
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRA=()
if [ "${1:-}" = "--scaling" ]; then EXTRA=(--scaling); shift; fi
N="${1:-200}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/runbook-target}"
if [ ! -x .venv/bin/moto_server ]; then python3 -m venv .venv; fi
.venv/bin/pip install --quiet --disable-pip-version-check 'moto[server]==5.2.5' boto3 awscli
cargo build --release --quiet
exec .venv/bin/python benches/fanout.py --runbook "$CARGO_TARGET_DIR/release/runbook" --n "$N" "${EXTRA[@]}"
