#!/usr/bin/env bash
# What embedding every AWS service model costs: the binary's size, and the wall time of
# `runbook check` on the bundled runbooks, for a binary before and one after, as ratios.
#
# Usage: benches/models.sh BEFORE_BINARY AFTER_BINARY [ROUNDS]
#   e.g. build main's and this branch's release binaries, copy each out, and compare them.
# Both binaries check the same runbooks (this checkout's), ROUNDS times each, interleaved so
# that a busy machine slows both alike; the median is compared. A process's start is part of
# what a person waits for, so it is measured too.
set -euo pipefail
before=${1:?usage: benches/models.sh BEFORE_BINARY AFTER_BINARY [ROUNDS]}
after=${2:?usage: benches/models.sh BEFORE_BINARY AFTER_BINARY [ROUNDS]}
rounds=${3:-30}
cd "$(dirname "$0")/.."
runbooks=(runbooks/*.md runbooks/troubleshooting/*.md)

now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

tb=$(mktemp); ta=$(mktemp)
trap 'rm -f "$tb" "$ta"' EXIT
for bin in "$before" "$after"; do "$bin" check "${runbooks[@]}" >/dev/null 2>&1 || true; done
for _ in $(seq "$rounds"); do
  for pair in "$before:$tb" "$after:$ta"; do
    bin=${pair%%:*}; out=${pair##*:}
    t0=$(now); "$bin" check "${runbooks[@]}" >/dev/null 2>&1 || true; t1=$(now)
    echo $(( (t1 - t0) / 1000 )) >>"$out"
  done
done
mb=$(median <"$tb"); ma=$(median <"$ta")
sb=$(stat -c %s "$before"); sa=$(stat -c %s "$after")
# The worst case a runbook can ask for: a call to ec2, the largest model (1.3 MB parsed), next to
# one to sts; only the after binary knows ec2.
one=$(mktemp -d); trap 'rm -rf "$tb" "$ta" "$one"' EXIT
printf '# x\n\n```aws ec2:DescribeVpcs id=a\n```\n' >"$one/ec2.md"
printf '# x\n\n```aws sts:GetCallerIdentity id=a\n```\n' >"$one/sts.md"
worst() {
  for _ in $(seq "$rounds"); do t0=$(now); "$after" check "$one/$1" >/dev/null 2>&1 || true; t1=$(now); echo $(( (t1 - t0) / 1000 )); done | median
}
we=$(worst ec2.md); ws=$(worst sts.md)
awk -v sb="$sb" -v sa="$sa" -v mb="$mb" -v ma="$ma" -v n="${#runbooks[@]}" 'BEGIN {
  printf "binary size     before %8.1f MiB  after %8.1f MiB  ratio %.3f  (+%.1f MiB)\n", sb/1048576, sa/1048576, sa/sb, (sa-sb)/1048576
  printf "check %d files  before %8.2f ms   after %8.2f ms   ratio %.3f  (%+.2f ms)\n", n, mb/1000, ma/1000, ma/mb, (ma-mb)/1000
}'
awk -v we="$we" -v ws="$ws" 'BEGIN {
  printf "after: check of one ec2 call %.2f ms, of one sts call %.2f ms: ratio %.3f (the largest model costs %+.2f ms)\n", we/1000, ws/1000, we/ws, (we-ws)/1000
}'
