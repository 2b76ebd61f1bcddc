-- Settings changed in the configuration files that wait for a server restart
-- (pg_settings only: a monitoring role may not read pg_file_settings).
SELECT name, setting, unit, context
FROM pg_settings
WHERE pending_restart
ORDER BY name
