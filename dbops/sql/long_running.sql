-- Statements of this database running (or transactions idle) for longer than the limit.
SELECT pid,
       usename AS username,
       application_name,
       client_addr::text AS client_addr,
       state,
       wait_event_type,
       wait_event,
       now() - query_start AS duration,
       now() - xact_start AS transaction_age,
       left(query, 2000) AS query
FROM pg_stat_activity
WHERE datname = current_database()
  AND pid <> pg_backend_pid()
  AND state IS NOT NULL
  AND state <> 'idle'
  AND query_start < now() - make_interval(secs => %(min_seconds)s)
ORDER BY query_start
LIMIT %(limit)s
