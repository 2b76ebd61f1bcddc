-- Sequential and index scans of the larger tables.
SELECT schemaname AS schema,
       relname AS name,
       seq_scan,
       seq_tup_read,
       idx_scan,
       n_live_tup
FROM pg_stat_user_tables
WHERE n_live_tup >= %(min_rows)s
ORDER BY seq_tup_read DESC, schemaname, relname
LIMIT %(limit)s
