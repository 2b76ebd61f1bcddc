-- Every server setting as this session sees it: the snapshot a change set restores.
SELECT name, setting, unit, vartype, context, source, sourcefile, pending_restart
FROM pg_settings
ORDER BY name
