-- Installed extensions with their schema and version, and every version the server
-- offers for them (security-update discovery and planning).
SELECT e.extname AS name,
       e.extversion AS version,
       n.nspname AS schema,
       a.default_version,
       coalesce(array_agg(v.version) FILTER (WHERE v.version IS NOT NULL), '{}') AS available
FROM pg_extension e
JOIN pg_namespace n ON n.oid = e.extnamespace
LEFT JOIN pg_available_extensions a ON a.name = e.extname
LEFT JOIN pg_available_extension_versions v ON v.name = e.extname
GROUP BY e.extname, e.extversion, n.nspname, a.default_version
ORDER BY e.extname
