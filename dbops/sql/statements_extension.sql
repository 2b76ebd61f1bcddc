-- pg_stat_statements as created in this database: its version and schema.
SELECT x.extversion AS version, n.nspname AS schema
FROM pg_extension AS x
JOIN pg_namespace AS n ON n.oid = x.extnamespace
WHERE x.extname = 'pg_stat_statements'
