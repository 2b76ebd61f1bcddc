-- Cumulative counters of this database and the server's checkpoints (PostgreSQL 17+).
SELECT d.xact_commit + d.xact_rollback AS xacts,
       d.blks_hit, d.blks_read, d.temp_bytes,
       (SELECT num_timed + num_requested FROM pg_stat_checkpointer) AS checkpoints
FROM pg_stat_database d
WHERE d.datname = current_database()
