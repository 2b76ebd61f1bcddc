#!/bin/sh
# Reports free space on the data volume; fails below the given percentage (default 10).
set -eu
min=${1:-10}
df -P / | awk -v min="$min" 'NR==2 { free = 100 - $5; print "free space: " free "%"; exit (free < min) }'
