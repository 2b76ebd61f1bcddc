-- Indexes left invalid, typically by a failed CREATE INDEX CONCURRENTLY or REINDEX.
SELECT n.nspname AS schema,
       t.relname AS table,
       c.relname AS index,
       pg_get_indexdef(i.indexrelid) AS definition
FROM pg_index AS i
JOIN pg_class AS c ON c.oid = i.indexrelid
JOIN pg_class AS t ON t.oid = i.indrelid
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE NOT i.indisvalid
ORDER BY n.nspname, t.relname, c.relname
LIMIT %(limit)s
