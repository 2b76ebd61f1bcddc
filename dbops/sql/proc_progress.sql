-- What a backend is doing now, from the progress views of VACUUM, CLUSTER/VACUUM FULL
-- and CREATE INDEX/REINDEX.
SELECT 'vacuum' AS kind, phase,
       heap_blks_total AS total, heap_blks_vacuumed AS done
FROM pg_stat_progress_vacuum WHERE pid = %(pid)s
UNION ALL
SELECT 'vacuum full', phase, heap_blks_total, heap_blks_scanned
FROM pg_stat_progress_cluster WHERE pid = %(pid)s
UNION ALL
SELECT 'index', phase, blocks_total, blocks_done
FROM pg_stat_progress_create_index WHERE pid = %(pid)s
