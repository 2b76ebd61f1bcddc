-- Indexes whose key columns (and operator classes) are a leading part of another
-- valid index of the same kind on the same table. A unique or primary-key index is only
-- a duplicate of one with the same columns that is at least as strict.
WITH idx AS (
    SELECT i.indexrelid,
           i.indrelid,
           i.indkey::text || ' ' AS keys,
           i.indclass::text || ' ' AS classes,
           CASE WHEN i.indisprimary THEN 2 WHEN i.indisunique THEN 1 ELSE 0 END AS strictness,
           c.relam,
           c.relname AS index,
           c.relpages
    FROM pg_index AS i
    JOIN pg_class AS c ON c.oid = i.indexrelid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE i.indisvalid
      AND i.indexprs IS NULL
      AND i.indpred IS NULL
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\_toast%%'
)
SELECT n.nspname AS schema,
       t.relname AS table,
       a.index,
       b.index AS covered_by,
       a.relpages::bigint * current_setting('block_size')::int AS size_bytes,
       pg_get_indexdef(a.indexrelid) AS definition,
       pg_get_indexdef(b.indexrelid) AS covered_by_definition
FROM idx AS a
JOIN idx AS b ON b.indrelid = a.indrelid AND b.indexrelid <> a.indexrelid AND b.relam = a.relam
JOIN pg_class AS t ON t.oid = a.indrelid
JOIN pg_namespace AS n ON n.oid = t.relnamespace
WHERE starts_with(b.keys, a.keys)
  AND starts_with(b.classes, a.classes)
  AND (
        (a.keys <> b.keys AND a.strictness = 0)
     OR (a.keys = b.keys AND (b.strictness > a.strictness
                              OR (b.strictness = a.strictness AND a.indexrelid > b.indexrelid)))
  )
ORDER BY n.nspname, t.relname, a.index, b.index
LIMIT %(limit)s
