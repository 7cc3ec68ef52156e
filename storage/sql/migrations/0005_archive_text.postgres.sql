-- Full-text search in archives (XEP-0431), PostgreSQL: a tsvector of the
-- body kept by the database, with the 'simple' configuration (lower case,
-- no stemming, no stop words) so that it works for every language, and a
-- GIN index on it.
ALTER TABLE archive_messages
    ADD COLUMN body_tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', body)) STORED;

CREATE INDEX archive_messages_text ON archive_messages USING GIN (body_tsv);
