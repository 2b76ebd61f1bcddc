-- The configuration files as the server reads them now, errors included.
SELECT sourcefile, sourceline, seqno, name, setting, applied, error
FROM pg_file_settings
ORDER BY seqno
