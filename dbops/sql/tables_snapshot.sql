-- Table statistics for a stored snapshot (sizes from the planner's page counts, which
-- take no lock).
SELECT s.schemaname AS schema,
       s.relname AS name,
       s.n_live_tup,
       s.n_dead_tup,
       s.seq_scan,
       s.seq_tup_read,
       s.idx_scan,
       (c.relpages::bigint + coalesce(t.relpages, 0)) * current_setting('block_size')::int
           AS total_bytes,
       s.last_vacuum,
       s.last_autovacuum,
       s.last_analyze,
       s.last_autoanalyze
FROM pg_stat_user_tables AS s
JOIN pg_class AS c ON c.oid = s.relid
LEFT JOIN pg_class AS t ON t.oid = c.reltoastrelid
ORDER BY s.n_live_tup + s.n_dead_tup DESC, s.schemaname, s.relname
LIMIT %(limit)s
