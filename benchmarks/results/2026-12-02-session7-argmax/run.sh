#!/usr/bin/env bash
set -u
export POCL_CACHE_DIR=$HOME/.cache/refineseg/pocl
O=/tmp/ab/out; cd /work/main
/tmp/ab/refineseg-after bench roofline --repeats 3 > $O/roof1.txt 2>&1
for i in 1 2 3; do for v in before after; do
/tmp/ab/refineseg-$v bench train --batch 8 --size 128 --width 16 --steps 12 --warmup 3 --profile-steps 2 --launch-probe 0 --json $O/$v$i.json > $O/$v$i.txt 2>&1
done; done
/tmp/ab/refineseg-after bench roofline --repeats 3 > $O/roof2.txt 2>&1
echo done > $O/DONE
