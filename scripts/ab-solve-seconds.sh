#!/usr/bin/env bash
# Alternate two flatscape binaries on one scenario and print each run's fokker_planck.solve_seconds
# and the median ratio B/A (alternation cancels most of the drift of a shared machine's load).
# usage: scripts/ab-solve-seconds.sh BIN_A BIN_B SCENARIO.toml [PAIRS=8]
set -euo pipefail
a=$1; b=$2; scenario=$3; pairs=${4:-8}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
secs() { # binary label
  rm -rf "$work/$2"; "$1" run "$scenario" --out "$work/$2" --quiet >/dev/null 2>&1
  python3 - "$work/$2" <<'PY'
import json, pathlib, sys
p = next(pathlib.Path(sys.argv[1]).rglob("summary.json"))
print(json.loads(p.read_text())["fokker_planck"]["solve_seconds"])
PY
}
ratios=()
for _ in $(seq "$pairs"); do
  sa=$(secs "$a" a); sb=$(secs "$b" b)
  r=$(python3 -c "print($sb/$sa)"); ratios+=("$r")
  echo "A $sa  B $sb  B/A $r"
done
python3 -c "import statistics,sys; r=sorted(map(float,sys.argv[1:])); print(f'median B/A {statistics.median(r):.3f} (min {r[0]:.3f}, max {r[-1]:.3f}, {len(r)} pairs)')" "${ratios[@]}"
