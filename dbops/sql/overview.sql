-- Database size, connection limits, cache hit ratios and transaction-id age.
SELECT
    current_database() AS database,
    pg_database_size(current_database()) AS size_bytes,
    current_setting('server_version') AS server_version,
    current_setting('max_connections')::int AS max_connections,
    current_setting('superuser_reserved_connections')::int
        + coalesce(current_setting('reserved_connections', true)::int, 0) AS reserved_connections,
    (SELECT sum(heap_blks_hit)::float8 / nullif(sum(heap_blks_hit) + sum(heap_blks_read), 0)
       FROM pg_statio_user_tables) AS table_hit_ratio,
    (SELECT sum(idx_blks_hit)::float8 / nullif(sum(idx_blks_hit) + sum(idx_blks_read), 0)
       FROM pg_statio_user_indexes) AS index_hit_ratio,
    age(d.datfrozenxid)::bigint AS xid_age,
    mxid_age(d.datminmxid)::bigint AS mxid_age,
    current_setting('autovacuum_freeze_max_age')::bigint AS freeze_max_age
FROM pg_database AS d
WHERE d.datname = current_database()
