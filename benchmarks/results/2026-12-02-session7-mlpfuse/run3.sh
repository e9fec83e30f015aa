#!/usr/bin/env bash
set -u
export POCL_CACHE_DIR=$HOME/.cache/refineseg/pocl
O=/tmp/mlpfuse-ab/out; cd /work/wt/mlpfuse
uptime > $O/load3.txt
nice -n 5 /tmp/mlpfuse-ab/refineseg-B2 bench roofline --repeats 3 > $O/roof5.txt 2>&1
for i in 7 8 9; do for v in A B2; do
uptime >> $O/load3.txt
nice -n 5 /tmp/mlpfuse-ab/refineseg-$v bench train --batch 8 --size 128 --width 16 --steps 12 --warmup 3 --profile-steps 2 --launch-probe 0 --json $O/$v$i.json > $O/$v$i.txt 2>&1
done; done
nice -n 5 /tmp/mlpfuse-ab/refineseg-B2 bench roofline --repeats 3 > $O/roof6.txt 2>&1
uptime >> $O/load3.txt
echo done > $O/DONE3
