-- Schemas of the objects that use an extension's types, functions or operators (table
-- columns, indexes, functions, domains, views). A backup of only some schemas must
-- cover all of them before the extension may be dropped and restored from it.
WITH members AS (
    SELECT d.classid, d.objid
    FROM pg_depend d
    JOIN pg_extension e ON e.oid = d.refobjid
    WHERE d.refclassid = 'pg_extension'::regclass
      AND d.deptype = 'e'
      AND e.extname = %(name)s
)
SELECT DISTINCT n.nspname AS schema
FROM pg_depend d
JOIN members m ON m.classid = d.refclassid AND m.objid = d.refobjid
LEFT JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid
LEFT JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid
LEFT JOIN pg_type t ON d.classid = 'pg_type'::regclass AND t.oid = d.objid
LEFT JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid
LEFT JOIN pg_class rc ON rc.oid = r.ev_class
JOIN pg_namespace n
  ON n.oid = coalesce(c.relnamespace, p.pronamespace, t.typnamespace, rc.relnamespace)
WHERE d.deptype = 'n'
ORDER BY 1
