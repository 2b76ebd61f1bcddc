-- Statements of this database (summed over users), slowest mean first, with their
-- share of the time spent by all statements of the database.
WITH s AS (
    SELECT queryid,
           min(query) AS query,
           sum(calls)::bigint AS calls,
           sum(total_exec_time) AS total_exec_time,
           sum(rows)::bigint AS rows
    FROM {statements}
    WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND queryid IS NOT NULL
      AND query NOT LIKE '/* change-portal */%%'
    GROUP BY queryid
), total AS (
    SELECT sum(total_exec_time) AS all_time FROM s
)
SELECT s.queryid,
       s.query,
       s.calls,
       s.total_exec_time,
       s.total_exec_time / nullif(s.calls, 0) AS mean_exec_time,
       s.rows,
       s.total_exec_time / nullif(total.all_time, 0) AS share
FROM s, total
WHERE s.calls > 0
  AND s.total_exec_time / s.calls > %(threshold_ms)s
ORDER BY mean_exec_time DESC, s.queryid
LIMIT %(limit)s
