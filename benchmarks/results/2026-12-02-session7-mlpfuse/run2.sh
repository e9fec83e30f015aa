#!/usr/bin/env bash
set -u
export POCL_CACHE_DIR=$HOME/.cache/refineseg/pocl
O=/tmp/mlpfuse-ab/out; cd /work/wt/mlpfuse
uptime > $O/load2.txt
nice -n 5 /tmp/mlpfuse-ab/refineseg-B bench roofline --repeats 3 > $O/roof3.txt 2>&1
for i in 4 5 6; do for v in B A; do
uptime >> $O/load2.txt
nice -n 5 /tmp/mlpfuse-ab/refineseg-$v bench train --batch 8 --size 128 --width 16 --steps 12 --warmup 3 --profile-steps 2 --launch-probe 0 --json $O/$v$i.json > $O/$v$i.txt 2>&1
done; done
nice -n 5 /tmp/mlpfuse-ab/refineseg-B bench roofline --repeats 3 > $O/roof4.txt 2>&1
uptime >> $O/load2.txt
echo done > $O/DONE2
