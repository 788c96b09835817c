#!/usr/bin/env bash
# The tuning runs behind the defaults in benchmarks/README.md: syncd's handshake bound on a
# latency-bound fleet, then the retry policy under a fault mix. Results in benchmarks/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
V=.venv/bin
out=benchmarks/results
mkdir -p "$out"
# 1. handshake bound, N=1000, 50-150 ms round trips, no faults
for hs in 25 50 100 200 400; do
    $V/python -m benchmarks.fanout --n 1000 --reps 1 --rtt-ms 50 150 --contenders syncd \
        --syncd-policy "handshake_concurrency=$hs" --out "$out/tune-handshake-$hs.json" \
        | tail -1
done
# 2. retry policy under the fault mix (30 % faulty), 300 mirrors, 20-200 ms, rsync 0.2-2 s;
#    the same per-phase timeouts for every contender: connect 5 s, command 10 s
export BENCH_CONNECT_TIMEOUT=5 BENCH_COMMAND_TIMEOUT=10
for attempts in 2 4; do
    for base in 0.5 2.0; do
        $V/python -m benchmarks.fanout --n 300 --reps 1 --fault-rate 0.3 --rtt-ms 20 200 \
            --rsync-s 0.2 2 --contenders syncd \
            --syncd-policy "max_attempts=$attempts" "backoff_initial=$base" "poll_initial=$base" \
            --out "$out/tune-retry-$attempts-$base.json" | tail -1
    done
done
# 3. every contender under the same fault mix, with the chosen defaults
$V/python -m benchmarks.fanout --n 300 --reps 3 --fault-rate 0.3 --rtt-ms 20 200 --rsync-s 0.2 2 \
    --contenders asyncio pssh xargs syncd --out "$out/fanout-faults.json" | tail -6
# 4. the bound above 400, and the retry policy chosen between the swept ones
for hs in 800 1000; do
    $V/python -m benchmarks.fanout --n 1000 --reps 1 --rtt-ms 50 150 --contenders syncd \
        --syncd-policy "handshake_concurrency=$hs" --out "$out/tune-handshake-$hs.json" \
        | tail -1
done
$V/python -m benchmarks.fanout --n 300 --reps 1 --fault-rate 0.3 --rtt-ms 20 200 --rsync-s 0.2 2 \
    --contenders syncd --syncd-policy max_attempts=3 backoff_initial=1.0 poll_initial=1.0 \
    --out "$out/tune-retry-3-1.0.json" | tail -1
