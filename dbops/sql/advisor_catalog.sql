-- The tables the advisor's statements name: row estimate, each column's type, collation
-- and pg_stats figures (visible only with SELECT on the table), and every valid index
-- with its access method and, per key, what its operator class can search.
SELECT n.nspname AS schema,
       c.relname AS name,
       c.reltuples::float8 AS reltuples,
       array_position(current_schemas(false), n.nspname::text) AS search_path_position,
       (SELECT d.datcollate FROM pg_database AS d WHERE d.datname = current_database())
           AS database_collation,
       coalesce((
           SELECT json_object_agg(a.attname, json_build_object(
                      'type', format_type(a.atttypid, NULL),
                      'collation', coll.collname,
                      'n_distinct', st.n_distinct,
                      'null_frac', st.null_frac,
                      'mcv', st.mcv,
                      'mcf', st.mcf))
           FROM pg_attribute AS a
           LEFT JOIN pg_collation AS coll ON coll.oid = a.attcollation
           LEFT JOIN LATERAL (
               SELECT s.n_distinct, s.null_frac,
                      s.most_common_vals::text::text[] AS mcv,
                      s.most_common_freqs AS mcf
               FROM pg_stats AS s
               WHERE s.schemaname = n.nspname AND s.tablename = c.relname
                 AND s.attname = a.attname
               ORDER BY s.inherited DESC
               LIMIT 1
           ) AS st ON true
           WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
       ), json_build_object()) AS columns,
       coalesce((
           SELECT json_agg(json_build_object(
                      'name', ic.relname,
                      'method', am.amname,
                      'unique', i.indisunique,
                      'can_order', pg_indexam_has_property(am.oid, 'can_order'),
                      'predicate', pg_get_expr(i.indpred, i.indrelid, true),
                      'keys', (
                          SELECT json_agg(json_build_object(
                                     'column', a.attname,
                                     'expression', CASE WHEN k.attnum = 0
                                         THEN pg_get_indexdef(i.indexrelid, k.ord::int, true) END,
                                     'opfamily', opf.opfname,
                                     'operators', (
                                         SELECT array_agg(DISTINCT o.oprname)
                                         FROM pg_amop AS ao
                                         JOIN pg_operator AS o ON o.oid = ao.amopopr
                                         WHERE ao.amopfamily = opc.opcfamily
                                           AND ao.amoppurpose = 's'
                                           AND ao.amoplefttype = opc.opcintype),
                                     'search_nulls', pg_index_column_has_property(
                                         i.indexrelid, k.ord::int, 'search_nulls'),
                                     'collation', kcoll.collname)
                                     ORDER BY k.ord)
                          FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
                          LEFT JOIN pg_attribute AS a
                                 ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                          LEFT JOIN pg_opclass AS opc ON opc.oid = i.indclass[k.ord - 1]
                          LEFT JOIN pg_opfamily AS opf ON opf.oid = opc.opcfamily
                          LEFT JOIN pg_collation AS kcoll ON kcoll.oid = i.indcollation[k.ord - 1]
                          WHERE k.ord <= i.indnkeyatts))
                  ORDER BY i.indisprimary DESC, i.indisunique DESC, ic.relname)
           FROM pg_index AS i
           JOIN pg_class AS ic ON ic.oid = i.indexrelid
           JOIN pg_am AS am ON am.oid = ic.relam
           WHERE i.indrelid = c.oid AND i.indisvalid
       ), '[]'::json) AS indexes
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'm')
  AND c.relname = ANY (%(names)s)
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%%'
