-- Installed extensions with their version and the versions they could update to.
SELECT e.extname AS name,
       e.extversion AS version,
       a.default_version,
       coalesce(array_agg(v.version ORDER BY v.version) FILTER (WHERE v.version IS NOT NULL),
                '{}') AS available
FROM pg_extension e
JOIN pg_available_extensions a ON a.name = e.extname
LEFT JOIN pg_available_extension_versions v ON v.name = e.extname
GROUP BY e.extname, e.extversion, a.default_version
ORDER BY e.extname
