-- Full-text search in archives (XEP-0431), SQLite: an FTS5 index of the
-- bodies, external content (it stores no copy of them) whose rowid is
-- archive_messages.seq, kept by triggers. Messages are never updated.
CREATE VIRTUAL TABLE archive_text USING fts5(
    body, content = 'archive_messages', content_rowid = 'seq'
);

CREATE TRIGGER archive_text_insert AFTER INSERT ON archive_messages BEGIN
    INSERT INTO archive_text (rowid, body) VALUES (new.seq, new.body);
END;

CREATE TRIGGER archive_text_delete AFTER DELETE ON archive_messages BEGIN
    INSERT INTO archive_text (archive_text, rowid, body) VALUES ('delete', old.seq, old.body);
END;
