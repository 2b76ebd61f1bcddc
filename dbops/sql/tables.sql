-- User tables, most dead tuples first. Sizes come from the file system, except for a
-- table someone holds or awaits an ACCESS EXCLUSIVE lock on: reading its size would
-- queue behind that lock, so the planner's page count stands in (size_estimated).
WITH locked AS (
    SELECT DISTINCT relation
    FROM pg_locks
    WHERE mode = 'AccessExclusiveLock' AND locktype = 'relation'
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
)
SELECT s.schemaname AS schema,
       s.relname AS name,
       s.n_live_tup,
       s.n_dead_tup,
       CASE WHEN s.n_live_tup + s.n_dead_tup > 0
            THEN s.n_dead_tup::float8 / (s.n_live_tup + s.n_dead_tup) END AS dead_ratio,
       s.last_vacuum,
       s.last_autovacuum,
       s.last_analyze,
       s.last_autoanalyze,
       s.seq_scan,
       s.seq_tup_read,
       s.idx_scan,
       CASE WHEN s.relid IN (SELECT relation FROM locked)
            THEN c.relpages::bigint * current_setting('block_size')::int
            ELSE pg_total_relation_size(s.relid) END AS total_bytes,
       s.relid IN (SELECT relation FROM locked) AS size_estimated,
       age(c.relfrozenxid)::bigint AS xid_age,
       count(*) OVER () AS table_count
FROM pg_stat_user_tables AS s
JOIN pg_class AS c ON c.oid = s.relid
ORDER BY s.n_dead_tup DESC, c.relpages DESC, s.schemaname, s.relname
LIMIT %(limit)s
