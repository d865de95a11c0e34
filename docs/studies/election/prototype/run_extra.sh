#!/bin/bash
# After the main grid: a second seed for the e = 0.3 cells that decide the targets, a non-IID
# check of the filter's false positives, and a 10-round lone-carrier run. One process at a time.
cd "$(dirname "$0")"
while pgrep -f run_grid.sh > /dev/null; do sleep 10; done
PY="nice -n 15 env PYTHONPATH=src .venv/bin/python evaluate.py"
$PY --attack backdoor --e 0.3 --seed 0 --rounds 10 --methods rule --adaptive --lone
$PY --attack none --seed 0 --split dirichlet --methods borda,rule,multikrum
$PY --attack backdoor --e 0.3 --seed 1 --methods borda,rule,multikrum
$PY --attack backdoor --e 0.3 --seed 1 --methods rule,multikrum --adaptive
$PY --attack backdoor --e 0.3 --seed 1 --methods rule --adaptive --lone
$PY --attack label-flip --e 0.3 --seed 1 --methods borda,rule,multikrum
$PY --attack sign-flip-mean --e 0.3 --seed 1 --methods rule,multikrum
$PY --attack none --seed 1 --methods borda,rule,rule-q1,multikrum
