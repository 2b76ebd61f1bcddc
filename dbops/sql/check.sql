-- What "Test connection" reports: version, privileges and pg_stat_statements.
SELECT current_setting('server_version') AS server_version,
       current_setting('server_version_num')::int AS server_version_num,
       current_user AS username,
       r.rolsuper AS is_superuser,
       pg_has_role(current_user, 'pg_monitor', 'USAGE') AS has_pg_monitor,
       pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS has_pg_read_all_stats,
       pg_has_role(current_user, 'pg_read_all_settings', 'USAGE') AS has_pg_read_all_settings,
       x.extversion AS statements_version,
       xn.nspname AS statements_schema,
       (SELECT default_version FROM pg_available_extensions
         WHERE name = 'pg_stat_statements') AS statements_available_version
FROM pg_roles AS r
LEFT JOIN pg_extension AS x ON x.extname = 'pg_stat_statements'
LEFT JOIN pg_namespace AS xn ON xn.oid = x.extnamespace
WHERE r.rolname = current_user
