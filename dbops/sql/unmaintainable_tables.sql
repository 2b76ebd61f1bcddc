-- PostgreSQL 16 and older: VACUUM, ANALYZE, REINDEX and CREATE INDEX need the table's
-- owner (or a member of the owning role) or a superuser.
SELECT count(*) AS tables,
       (array_agg(format('%%I.%%I', n.nspname, c.relname) ORDER BY n.nspname, c.relname))[1:5]
           AS examples
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%%'
  AND NOT pg_has_role(current_user, c.relowner, 'USAGE')
