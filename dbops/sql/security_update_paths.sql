-- Which versions of each installed extension can be updated to which: PostgreSQL's own
-- order of extension versions, from the update scripts the server has.
SELECT e.extname AS name, p.source, p.target
FROM pg_extension e
CROSS JOIN LATERAL pg_extension_update_paths(e.extname) AS p
WHERE p.path IS NOT NULL
