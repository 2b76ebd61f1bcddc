-- The statements of this database that used the most time, for a stored snapshot.
SELECT queryid,
       min(query) AS query,
       sum(calls)::bigint AS calls,
       sum(total_exec_time) AS total_exec_time,
       sum(total_exec_time) / nullif(sum(calls), 0) AS mean_exec_time,
       sum(rows)::bigint AS rows
FROM {statements}
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND queryid IS NOT NULL
  AND query NOT LIKE '/* change-portal */%%'
GROUP BY queryid
HAVING sum(calls) > 0
ORDER BY total_exec_time DESC, queryid
LIMIT %(limit)s
