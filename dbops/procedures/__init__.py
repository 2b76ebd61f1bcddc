"""The database procedures (seed: DB_MAINTENANCE_PROCEDURES), registered with the
maintenance procedure framework so they run only inside an approved change in an open
window: ``tables`` (VACUUM, ANALYZE, REINDEX), ``extensions`` (UPGRADE), ``indexes``
(CREATE INDEX CONCURRENTLY); ``common`` holds what they share."""
