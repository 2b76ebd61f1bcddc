-- Client connections to the whole server by state (max_connections is server-wide).
-- Sessions of other users show no state without pg_read_all_stats.
SELECT coalesce(state, 'not visible') AS state,
       count(*) AS connections,
       count(*) FILTER (WHERE datname = current_database()) AS in_this_database
FROM pg_stat_activity
WHERE backend_type = 'client backend'
GROUP BY 1
ORDER BY 2 DESC, 1
