-- Transactions older than the threshold that hold back the xmin horizon (VACUUM could
-- not remove the dead tuples they can still see).
SELECT pid,
       usename,
       state,
       round(extract(epoch FROM now() - xact_start)) AS seconds
FROM pg_stat_activity
WHERE backend_xmin IS NOT NULL
  AND xact_start < now() - make_interval(secs => %(seconds)s)
  AND pid <> pg_backend_pid()
ORDER BY xact_start
