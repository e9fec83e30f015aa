#!/usr/bin/env bash
# quiet before/after benchmark: A = session start b6c528e, B = main at the end
set -u
export POCL_CACHE_DIR=$HOME/.cache/refineseg/pocl
A=/tmp/ab/refineseg-before; B=/work/main/.build/release/refineseg
O=${1:-/tmp/final/out}; mkdir -p $O
cd /work/main
echo "load at start: $(cat /proc/loadavg)" > $O/load.txt
$B bench roofline --repeats 3 > $O/roof1.txt 2>&1
for i in 1 2 3; do for v in A B; do eval bin=\$$v
  $bin bench train --batch 8 --size 128 --width 16 --steps 12 --warmup 3 --profile-steps 2 --launch-probe 0 --json $O/$v$i.json > $O/$v$i.txt 2>&1
done; done
$B bench roofline --repeats 3 > $O/roof2.txt 2>&1
for i in 1 2 3; do SKIP_BUILD=1 STEPS=12 benchmarks/compare_step_time.sh $O/cmp$i > $O/cmp$i.txt 2>&1; done
for i in 1 2 3; do EVAL=1 SKIP_BUILD=1 STEPS=12 benchmarks/compare_step_time.sh $O/eval$i > $O/eval$i.txt 2>&1; done
echo "load at end: $(cat /proc/loadavg)" >> $O/load.txt
echo done > $O/DONE
