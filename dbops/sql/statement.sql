-- One statement of this database (summed over users) by its queryid.
SELECT queryid,
       min(query) AS query,
       sum(calls)::bigint AS calls,
       sum(total_exec_time) AS total_exec_time,
       sum(total_exec_time) / nullif(sum(calls), 0) AS mean_exec_time,
       sum(rows)::bigint AS rows
FROM {statements}
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND queryid = %(queryid)s
GROUP BY queryid
