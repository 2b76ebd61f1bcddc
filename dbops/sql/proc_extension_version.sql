-- The installed version of an extension, and the default the server would update to.
SELECT e.extversion AS installed, a.default_version
FROM pg_available_extensions a
LEFT JOIN pg_extension e ON e.extname = a.name
WHERE a.name = %(name)s
