-- The pg_settings rows of the named parameters: type, bounds, unit and context.
SELECT name, setting, unit, vartype, min_val, max_val, enumvals, context, source,
       sourcefile, pending_restart, boot_val, reset_val, short_desc
FROM pg_settings
WHERE name = ANY(%(names)s)
