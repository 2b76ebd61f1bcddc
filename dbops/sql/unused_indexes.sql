-- Indexes never scanned since the statistics were reset, that enforce no constraint.
SELECT s.schemaname AS schema,
       s.relname AS table,
       s.indexrelname AS index,
       s.idx_scan,
       c.relpages::bigint * current_setting('block_size')::int AS size_bytes,
       pg_get_indexdef(s.indexrelid) AS definition
FROM pg_stat_user_indexes AS s
JOIN pg_index AS i ON i.indexrelid = s.indexrelid
JOIN pg_class AS c ON c.oid = s.indexrelid
WHERE s.idx_scan = 0
  AND NOT i.indisunique
  AND NOT i.indisprimary
  AND NOT EXISTS (SELECT 1 FROM pg_constraint AS k WHERE k.conindid = s.indexrelid)
ORDER BY c.relpages DESC, s.schemaname, s.relname, s.indexrelname
LIMIT %(limit)s
