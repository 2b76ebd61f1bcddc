-- The indexes of the given tables and whether they are valid.
SELECT n.nspname AS schema,
       t.relname AS table_name,
       i.relname AS index_name,
       x.indisvalid AS valid,
       pg_relation_size(i.oid) AS bytes
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE (n.nspname, t.relname) IN (SELECT * FROM unnest(%(schemas)s::text[], %(names)s::text[]))
ORDER BY 1, 2, 3
