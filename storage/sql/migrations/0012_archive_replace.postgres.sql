-- Archived messages may be replaced (Archives.Replace: the tombstone of a
-- retracted message, XEP-0424), PostgreSQL: the generated tsvector of
-- migration 0005 follows a new body by itself; the column says so.
COMMENT ON COLUMN archive_messages.body_tsv IS
    'to_tsvector(''simple'', body), recomputed when Archives.Replace rewrites body';
