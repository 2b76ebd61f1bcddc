-- Sessions of this database waiting for a lock, one row per session blocking them.
SELECT blocked.pid,
       blocked.usename AS username,
       now() - blocked.query_start AS waiting_for,
       blocked.wait_event,
       left(blocked.query, 2000) AS query,
       blocker.pid AS blocker_pid,
       blocker.usename AS blocker_username,
       blocker.application_name AS blocker_application,
       blocker.state AS blocker_state,
       now() - blocker.xact_start AS blocker_transaction_age,
       left(blocker.query, 2000) AS blocker_query
FROM pg_stat_activity AS blocked
CROSS JOIN LATERAL unnest(pg_blocking_pids(blocked.pid)) AS b(pid)
LEFT JOIN pg_stat_activity AS blocker ON blocker.pid = b.pid
WHERE blocked.datname = current_database()
  AND blocked.wait_event_type = 'Lock'
ORDER BY blocked.query_start, blocked.pid, blocker.pid
LIMIT %(limit)s
