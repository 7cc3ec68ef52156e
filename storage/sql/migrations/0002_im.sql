-- What instant messaging keeps per account (storage/im.go): rosters and
-- their versions, pending subscription requests, offline messages,
-- blocklists, vCards, private XML and last activity. Every table hangs on
-- users with ON DELETE CASCADE, so that deleting an account deletes all.

-- One counter per account, raised by one in the transaction of each roster
-- change (XEP-0237). No row: the roster was never changed (version 0).
CREATE TABLE roster_versions (
    domain  {{TEXT}} NOT NULL,
    local   {{TEXT}} NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (domain, local),
    FOREIGN KEY (domain, local) REFERENCES users (domain, local) ON DELETE CASCADE
);

-- One row per contact (RFC 6121 §2.1.2); contact is the bare JID.
CREATE TABLE roster_items (
    domain       {{TEXT}} NOT NULL,
    local        {{TEXT}} NOT NULL,
    contact      {{TEXT}} NOT NULL,
    name         {{TEXT}} NOT NULL,
    subscription {{TEXT}} NOT NULL CHECK (subscription IN ('none', 'to', 'from', 'both')),
    pending_out  BOOLEAN NOT NULL,
    pending_in   BOOLEAN NOT NULL,
    approved     BOOLEAN NOT NULL,
    PRIMARY KEY (domain, local, contact),
    FOREIGN KEY (domain, local) REFERENCES users (domain, local) ON DELETE CASCADE
);

-- The groups of a roster item, a row each, so that any name round-trips.
CREATE TABLE roster_groups (
    domain  {{TEXT}} NOT NULL,
    local   {{TEXT}} NOT NULL,
    contact {{TEXT}} NOT NULL,
    name    {{TEXT}} NOT NULL,
    PRIMARY KEY (domain, local, contact, name),
    FOREIGN KEY (domain, local, contact) REFERENCES roster_items (domain, local, contact) ON DELETE CASCADE
);

-- Inbound subscription requests not answered yet (RFC 6121 §3.1.3), one
-- per contact; id orders them by arrival.
CREATE TABLE subscription_requests (
    id      {{ID}},
    domain  {{TEXT}} NOT NULL,
    local   {{TEXT}} NOT NULL,
    contact {{TEXT}} NOT NULL,
    stanza  {{BLOB}} NOT NULL,
    UNIQUE (domain, local, contact),
    FOREIGN KEY (domain, local) REFERENCES users (domain, local) ON DELETE CASCADE
);

-- Messages kept for accounts that were offline (XEP-0160); id grows with
-- each message and is never reused, so it orders them and names them.
CREATE TABLE offline_messages (
    id        {{ID}},
    domain    {{TEXT}} NOT NULL,
    local     {{TEXT}} NOT NULL,
    stored_at BIGINT NOT NULL,
    stanza    {{BLOB}} NOT NULL,
    FOREIGN KEY (domain, local) REFERENCES users (domain, local) ON DELETE CASCADE
);

CREATE INDEX offline_messages_owner ON offline_messages (domain, local, id);

-- Blocked JIDs (XEP-0191), of any form.
CREATE TABLE blocklist (
    domain  {{TEXT}} NOT NULL,
    local   {{TEXT}} NOT NULL,
    blocked {{TEXT}} NOT NULL,
    PRIMARY KEY (domain, local, blocked),
    FOREIGN KEY (domain, local) REFERENCES users (domain, local) ON DELETE CASCADE
);

-- vcard-temp (XEP-0054), as XML.
CREATE TABLE vcards (
    domain {{TEXT}} NOT NULL,
    local  {{TEXT}} NOT NULL,
    vcard  {{BLOB}} NOT NULL,
    PRIMARY KEY (domain, local),
    FOREIGN KEY (domain, local) REFERENCES users (domain, local) ON DELETE CASCADE
);

-- Private XML storage (XEP-0049), one fragment per namespace.
CREATE TABLE private_xml (
    domain    {{TEXT}} NOT NULL,
    local     {{TEXT}} NOT NULL,
    namespace {{TEXT}} NOT NULL,
    fragment  {{BLOB}} NOT NULL,
    PRIMARY KEY (domain, local, namespace),
    FOREIGN KEY (domain, local) REFERENCES users (domain, local) ON DELETE CASCADE
);

-- The last logout of each account and its status (XEP-0012).
CREATE TABLE last_activity (
    domain    {{TEXT}} NOT NULL,
    local     {{TEXT}} NOT NULL,
    logout_at BIGINT NOT NULL,
    status    {{TEXT}} NOT NULL,
    PRIMARY KEY (domain, local),
    FOREIGN KEY (domain, local) REFERENCES users (domain, local) ON DELETE CASCADE
);
