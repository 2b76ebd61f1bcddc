-- PostgreSQL 17 and later: the MAINTAIN privilege (or pg_maintain) allows VACUUM,
-- ANALYZE and REINDEX; CREATE INDEX still needs the table's owner.
SELECT count(*) AS tables,
       (array_agg(format('%%I.%%I', n.nspname, c.relname) ORDER BY n.nspname, c.relname))[1:5]
           AS examples
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%%'
  AND NOT has_table_privilege(c.oid, 'MAINTAIN')
