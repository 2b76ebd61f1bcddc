#!/bin/sh
# Demo of a failing step: exits non-zero so the rollback script runs.
echo "applying schema migration"
echo "error: lock timeout on table claims" >&2
exit 3
