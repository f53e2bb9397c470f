#!/usr/bin/env bash
# Organisation-scale benchmark: create N member accounts and assign a permission set in all of
# them with `runbook run`, with a sequential boto3 script, and with an aws-cli loop; straight to
# moto and through a proxy that adds 50 ms to every request.
#
# usage: benches/fanout.sh [N]        (N defaults to 200; aws-cli is measured in full on 20 accounts)
#        benches/fanout.sh --scaling  (runbook alone at N = 200 and 1000: journal cost per item, RSS)
#        benches/fanout.sh --quota    (AWS's own limits, played by the quota proxy of the tests:
#                                      runbook against a concurrent boto3 script, N = 200 and 1000
#                                      assignments, N = 200 and 1000 accounts (about 10 min for
#                                      the 1000 accounts alone); aws-cli in full on 20)
# Other sizes: .venv/bin/python benches/fanout.py --quota --sizes 200 --account-sizes 1000 ...
# RUNBOOK_BENCH_NO_BUILD=1 skips the release build (when it is built already).
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRA=()
if [ "${1:-}" = "--scaling" ]; then EXTRA=(--scaling); shift; fi
if [ "${1:-}" = "--quota" ]; then EXTRA=(--quota --proxy-bin "${CARGO_TARGET_DIR:-$HOME/.cache/runbook-target}/release/examples/quota_proxy"); shift; fi
N="${1:-200}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/runbook-target}"
if [ ! -x .venv/bin/moto_server ]; then python3 -m venv .venv; fi
.venv/bin/pip install --quiet --disable-pip-version-check 'moto[server]==5.2.5' boto3 awscli
if [ -z "${RUNBOOK_BENCH_NO_BUILD:-}" ]; then cargo build --release --quiet --bin runbook --example quota_proxy; fi
exec .venv/bin/python benches/fanout.py --runbook "$CARGO_TARGET_DIR/release/runbook" --n "$N" "${EXTRA[@]}"
