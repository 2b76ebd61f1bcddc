-- Tables named by the analysed statements: row estimate, per-column n_distinct from
-- pg_stats (only visible with SELECT on the table) and the key columns of each valid,
-- non-partial index (NULL for an expression).
SELECT n.nspname AS schema,
       c.relname AS name,
       c.reltuples::float8 AS reltuples,
       n.nspname = ANY (current_schemas(false)) AS on_search_path,
       array_position(current_schemas(false), n.nspname::text) AS search_path_position,
       coalesce((
           SELECT json_object_agg(a.attname, st.n_distinct)
           FROM pg_attribute AS a
           LEFT JOIN LATERAL (
               SELECT s.n_distinct
               FROM pg_stats AS s
               WHERE s.schemaname = n.nspname AND s.tablename = c.relname
                 AND s.attname = a.attname
               ORDER BY s.inherited DESC
               LIMIT 1
           ) AS st ON true
           WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
       ), json_build_object()) AS columns,
       coalesce((
           SELECT json_agg(
                      (SELECT json_agg(a.attname ORDER BY k.ord)
                       FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
                       LEFT JOIN pg_attribute AS a
                              ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                       WHERE k.ord <= i.indnkeyatts)
                      ORDER BY i.indexrelid)
           FROM pg_index AS i
           WHERE i.indrelid = c.oid AND i.indisvalid AND i.indpred IS NULL
       ), '[]'::json) AS indexes
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'm')
  AND c.relname = ANY (%(names)s)
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%%'
