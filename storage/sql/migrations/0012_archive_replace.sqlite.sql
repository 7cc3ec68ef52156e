-- Archived messages may be replaced (Archives.Replace: the tombstone of a
-- retracted message, XEP-0424), SQLite: the FTS5 index of migration 0005
-- follows a new body, the old one taken out and the new one put in.
CREATE TRIGGER archive_text_update AFTER UPDATE OF body ON archive_messages BEGIN
    INSERT INTO archive_text (archive_text, rowid, body) VALUES ('delete', old.seq, old.body);
    INSERT INTO archive_text (rowid, body) VALUES (new.seq, new.body);
END;
