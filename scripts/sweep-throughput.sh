#!/bin/bash
# Throughput of sharded sweeps on this machine: a 100 x 100 (sigma, eta) sweep with a very short
# sampler on a small N-D valley (10^4 points, no theory columns), computed
#   - in one process by `flatscape run` (the whole sweep in memory),
#   - by `sweep run` as 1, 2 and 4 shards running at the same time (each --threads T/shards),
# then the fixed cost of one `sweep run` process (start, scenario and manifest read, one point
# file check) and the cost of writing one point file.
#
#   scripts/sweep-throughput.sh [path/to/flatscape] [threads]
set -euo pipefail
B=${1:-target/release/flatscape}
T=${2:-2}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cp "$(dirname "$0")/bench/throughput-nd.toml" "$W/nd.toml"
now() { date +%s.%N; }
rate() { python3 -c "import sys; n,a,b=map(float,sys.argv[1:]); print(f'{n/(b-a):9.0f} points/s ({(b-a):.2f} s)')" "$@"; }

t0=$(now); "$B" run "$W/nd.toml" --out "$W/single" --quiet --threads "$T"; t1=$(now)
echo "flatscape run (one process, $T threads):      $(rate 10000 "$t0" "$t1")"
for N in 1 2 4; do
    D="$W/shards$N"
    TS=$(( T / N > 0 ? T / N : 1 ))
    "$B" sweep plan "$W/nd.toml" --out "$D" > /dev/null
    t0=$(now)
    for K in $(seq 1 "$N"); do
        "$B" sweep run "$W/nd.toml" --out "$D" --shard "$K/$N" --threads "$TS" --quiet &
    done
    wait
    t1=$(now)
    echo "sweep run, $N shard(s) at once x $TS thread(s): $(rate 10000 "$t0" "$t1")"
    "$B" sweep merge "$D" --quiet
    cmp "$D/sweep.csv" "$W/single/sweep.csv"
done
# Fixed cost of a process: 200 invocations whose one assigned point is already done.
t0=$(now)
for K in $(seq 1 200); do "$B" sweep run "$W/nd.toml" --out "$W/shards1" --shard "$K/10000" --quiet; done
t1=$(now)
python3 -c "import sys; a,b=map(float,sys.argv[1:]); print(f'process start + scenario + manifest read + 1 point check: {(b-a)/200*1e3:.2f} ms')" "$t0" "$t1"
# One process per point: 200 invocations that each compute and write one point.
D="$W/onebyone"; "$B" sweep plan "$W/nd.toml" --out "$D" > /dev/null
t0=$(now)
for K in $(seq 1 200); do "$B" sweep run "$W/nd.toml" --out "$D" --shard "$K/10000" --threads 1 --quiet; done
t1=$(now)
python3 -c "import sys; a,b=map(float,sys.argv[1:]); print(f'one process per point (start, manifest, compute, write): {(b-a)/200*1e3:.2f} ms per point')" "$t0" "$t1"
"$B" sweep merge "$W/shards1" | tail -1
