-- Whether an index exists and is valid (a failed CONCURRENTLY build leaves it invalid).
SELECT x.indisvalid AS valid
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_namespace n ON n.oid = i.relnamespace
WHERE n.nspname = %(schema)s AND i.relname = %(name)s
