#!/bin/sh
# Demo maintenance step: pretends to rotate application logs, printing what it does.
set -eu
echo "rotating application logs"
sleep "${1:-1}"
echo "logs rotated"
