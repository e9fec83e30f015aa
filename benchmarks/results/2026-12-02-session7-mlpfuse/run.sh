#!/usr/bin/env bash
set -u
export POCL_CACHE_DIR=$HOME/.cache/refineseg/pocl
O=/tmp/mlpfuse-ab/out; cd /work/wt/mlpfuse
uptime > $O/load.txt
nice -n 5 /tmp/mlpfuse-ab/refineseg-B bench roofline --repeats 3 > $O/roof1.txt 2>&1
for i in 1 2 3; do for v in A B; do
uptime >> $O/load.txt
nice -n 5 /tmp/mlpfuse-ab/refineseg-$v bench train --batch 8 --size 128 --width 16 --steps 12 --warmup 3 --profile-steps 2 --launch-probe 0 --json $O/$v$i.json > $O/$v$i.txt 2>&1
done; done
nice -n 5 /tmp/mlpfuse-ab/refineseg-B bench roofline --repeats 3 > $O/roof2.txt 2>&1
uptime >> $O/load.txt
echo done > $O/DONE
