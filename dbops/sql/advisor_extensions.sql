-- HypoPG and pg_trgm: installed on the server, created in this database (and where).
SELECT a.name,
       a.installed_version IS NOT NULL AS created,
       n.nspname AS schema
FROM pg_available_extensions AS a
LEFT JOIN pg_extension AS e ON e.extname = a.name
LEFT JOIN pg_namespace AS n ON n.oid = e.extnamespace
WHERE a.name IN ('hypopg', 'pg_trgm')
