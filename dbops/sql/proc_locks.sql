-- Locks that would make maintenance of these tables wait: anything not granted, and any
-- ACCESS EXCLUSIVE lock another session holds on them.
SELECT n.nspname AS schema,
       c.relname AS name,
       l.mode,
       l.granted,
       l.pid
FROM pg_locks l
JOIN pg_class c ON c.oid = l.relation
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE l.pid <> pg_backend_pid()
  AND (n.nspname, c.relname) IN (SELECT * FROM unnest(%(schemas)s::text[], %(names)s::text[]))
  AND (NOT l.granted OR l.mode = 'AccessExclusiveLock')
