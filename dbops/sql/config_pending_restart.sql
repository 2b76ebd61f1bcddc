-- Settings changed in the configuration files that wait for a server restart.
SELECT s.name, s.setting, s.unit, f.setting AS file_setting, f.sourcefile
FROM pg_settings s
LEFT JOIN LATERAL (
    SELECT fs.setting, fs.sourcefile FROM pg_file_settings fs
    WHERE fs.name = s.name ORDER BY fs.seqno DESC LIMIT 1
) f ON true
WHERE s.pending_restart
ORDER BY s.name
