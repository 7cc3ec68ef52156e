-- Multi-user chat (XEP-0045), storage/muc.go. One row per persistent room
-- of a service (domain: the service address, local: the room's name);
-- config is the muc#roomconfig settings as a JSON document, so that a new
-- setting needs no migration. Rooms that are not persistent live only in
-- memory. creator is the bare JID that created the room, for the limit
-- on rooms per user. Times are Unix microseconds, UTC.
CREATE TABLE muc_rooms (
    domain      {{TEXT}} NOT NULL,
    local       {{TEXT}} NOT NULL,
    config      {{TEXT}} NOT NULL,
    subject     {{TEXT}} NOT NULL,
    subject_by  {{TEXT}} NOT NULL,
    subject_at  BIGINT NOT NULL,
    secret      {{BLOB}} NOT NULL,
    creator     {{TEXT}} NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (domain, local)
);

-- A room's affiliation lists: one row per bare JID (or domain) with an
-- affiliation other than none; rows go with their room. The JIDs need not
-- be accounts of this server, so they do not hang on users.
CREATE TABLE muc_affiliations (
    domain      {{TEXT}} NOT NULL,
    local       {{TEXT}} NOT NULL,
    jid         {{TEXT}} NOT NULL,
    affiliation {{TEXT}} NOT NULL,
    nick        {{TEXT}} NOT NULL,
    reason      {{TEXT}} NOT NULL,
    PRIMARY KEY (domain, local, jid),
    FOREIGN KEY (domain, local) REFERENCES muc_rooms (domain, local) ON DELETE CASCADE
);
