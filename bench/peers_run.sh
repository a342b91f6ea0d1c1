#!/bin/bash
# The recorded peers run: a frozen copy of the committed code (TF re-reads
# library source when it traces, and others edit this working tree), the
# background training paused while timing and ALWAYS resumed (trap), then
# bench/peers.py with the given flags.
#   bash bench/peers_run.sh --rounds=3 --texts=128
set -u
STOP='fastbert_tf.train --flagfile=configs/.*_e5'
trap 'pkill -CONT -f "$STOP"' EXIT
CODE=/tmp/fastbert_peers_code
rm -rf "$CODE" && mkdir -p "$CODE"
git archive HEAD | tar -x -C "$CODE"
cp bench/peers*.py "$CODE/bench/"
git rev-parse HEAD > "$CODE/COMMIT"
.venv/bin/python bench/peers.py --code_root="$CODE" \
    --workdir="$PWD/runs/peers_ag_news/peers" --stop_pattern="$STOP" "$@"
