#!/bin/bash
# The evaluation grid, one process at a time, niced. Appends to results.jsonl.
cd "$(dirname "$0")"
PY="nice -n 15 env PYTHONPATH=src .venv/bin/python evaluate.py"
SEED=${SEED:-0}
$PY --attack none --seed $SEED --methods borda,rule,rule-q1,multikrum
for E in 0.3 0.2; do
  $PY --attack backdoor --e $E --seed $SEED --methods borda,rule,multikrum
  $PY --attack backdoor --e $E --seed $SEED --methods rule,multikrum --adaptive
  $PY --attack backdoor --e $E --seed $SEED --methods rule --adaptive --lone
  for A in label-flip alie-z1.5 sign-flip-mean ipm-large; do
    $PY --attack $A --e $E --seed $SEED --methods borda,rule,multikrum
  done
done
