-- Settings that differ from the built-in default, in the server's display form.
-- Values a client or this session set are not the server's configuration.
SELECT name, current_setting(name) AS value, unit, vartype, context, source, sourcefile
FROM pg_settings
WHERE source NOT IN ('default', 'override', 'client', 'session')
ORDER BY name
