#!/bin/bash
# Plan a sweep, submit it as a job array of N shards (at most M running at once) and a merge
# job that starts when every shard has succeeded:
#
#   scripts/slurm/submit.sh SCENARIO.toml DIR [N=100] [M=20]
#
# Partition, account, etc.: export SBATCH_PARTITION / SBATCH_ACCOUNT (read by sbatch), or edit
# the #SBATCH lines. If a shard fails, fix the cause and run this again: finished points are
# kept, only the missing ones are computed, and the merge runs again.
set -euo pipefail

SCENARIO=${1:?usage: submit.sh SCENARIO.toml DIR [N] [M]}
OUT=${2:?usage: submit.sh SCENARIO.toml DIR [N] [M]}
N=${3:-100}
M=${4:-20}
HERE=$(cd "$(dirname "$0")" && pwd)
FLATSCAPE=${FLATSCAPE:-flatscape}
export FLATSCAPE

"$FLATSCAPE" sweep plan "$SCENARIO" --out "$OUT"
ARRAY=$(sbatch --parsable --array="0-$((N - 1))%$M" "$HERE/sweep.sbatch" "$SCENARIO" "$OUT")
ARRAY=${ARRAY%%;*}
MERGE=$(sbatch --parsable --dependency="afterok:$ARRAY" "$HERE/merge.sbatch" "$OUT")
echo "submitted shards as job array $ARRAY (0-$((N - 1)), $M at a time) and the merge as job $MERGE"
