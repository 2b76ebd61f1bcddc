#!/bin/sh
# Rollback for failing_migration.sh.
echo "reverting schema migration"
echo "reverted"
