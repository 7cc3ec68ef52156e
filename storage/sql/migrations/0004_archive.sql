-- Message archives (XEP-0313, storage/archive.go). An archive is named by
-- its owner's bare JID (domain, local): an account's, or later a room's, so
-- the messages do not hang on users; Users.Delete deletes an account's in
-- its transaction. The preferences are an account's and hang on users.

-- One row per archived message. seq numbers the rows in insertion order
-- and is what queries order and page by; id is the XEP-0359 stanza-id the
-- clients see. with_bare and with_resource split the other party's JID, so
-- that a bare JID in a query matches every resource through an index.
-- stamp is Unix microseconds, UTC; size is the stanza's length, so that
-- Stats need not read the stanzas; body is what full-text search indexes
-- (migration 0005, one per dialect).
CREATE TABLE archive_messages (
    seq           {{ID}},
    domain        {{TEXT}} NOT NULL,
    local         {{TEXT}} NOT NULL,
    id            {{TEXT}} NOT NULL,
    stamp         BIGINT NOT NULL,
    with_bare     {{TEXT}} NOT NULL,
    with_resource {{TEXT}} NOT NULL,
    stanza        {{BLOB}} NOT NULL,
    size          BIGINT NOT NULL,
    body          {{TEXT}} NOT NULL
);

-- Paging through an archive, and its bounds.
CREATE INDEX archive_messages_owner ON archive_messages (domain, local, seq);
-- Looking up an id (RSM after/before, #extended after-id/before-id, ids).
CREATE UNIQUE INDEX archive_messages_id ON archive_messages (domain, local, id);
-- Paging through the messages exchanged with one JID.
CREATE INDEX archive_messages_with ON archive_messages (domain, local, with_bare, seq);
-- Queries by time, and Purge before a time.
CREATE INDEX archive_messages_stamp ON archive_messages (domain, local, stamp);
-- Expire, across archives, oldest first.
CREATE INDEX archive_messages_expire ON archive_messages (stamp);

-- An account's default archiving mode (XEP-0313 §6). No row: the account
-- never set its preferences, and the server's default applies.
CREATE TABLE archive_prefs (
    domain       {{TEXT}} NOT NULL,
    local        {{TEXT}} NOT NULL,
    default_mode {{TEXT}} NOT NULL,
    PRIMARY KEY (domain, local),
    FOREIGN KEY (domain, local) REFERENCES users (domain, local) ON DELETE CASCADE
);

-- The bare JIDs an account always or never archives.
CREATE TABLE archive_pref_jids (
    domain {{TEXT}} NOT NULL,
    local  {{TEXT}} NOT NULL,
    mode   {{TEXT}} NOT NULL CHECK (mode IN ('always', 'never')),
    jid    {{TEXT}} NOT NULL,
    PRIMARY KEY (domain, local, mode, jid),
    FOREIGN KEY (domain, local) REFERENCES archive_prefs (domain, local) ON DELETE CASCADE
);
