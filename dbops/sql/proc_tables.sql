-- Tables a maintenance procedure may touch, with their quoted name (the value a form
-- offers) and their statistics. Reads the catalog only: it takes no lock on the tables,
-- so it answers even while another session holds one.
SELECT n.nspname AS schema,
       c.relname AS name,
       quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS qualified,
       coalesce(s.n_live_tup, 0) AS live,
       coalesce(s.n_dead_tup, 0) AS dead,
       CASE WHEN coalesce(s.n_live_tup, 0) + coalesce(s.n_dead_tup, 0) = 0 THEN 0
            ELSE round(100.0 * s.n_dead_tup / (s.n_live_tup + s.n_dead_tup), 2)
       END AS dead_percent,
       -- From the catalog (no lock): pages as of the last VACUUM/ANALYZE.
       c.relpages::bigint * current_setting('block_size')::bigint AS est_bytes
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE c.relkind IN ('r', 'm')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%%'
  AND n.nspname NOT LIKE 'pg_temp%%'
ORDER BY n.nspname, c.relname
