-- Push registrations (XEP-0357, storage/push.go): the app servers an
-- account asked to be notified through while it cannot receive. Hangs on
-- users with ON DELETE CASCADE, so that deleting an account deletes them.

-- One row per app server and node; service is the app server's JID as a
-- string, form its publish-options data form as XML (empty for none).
CREATE TABLE push_registrations (
    domain  {{TEXT}} NOT NULL,
    local   {{TEXT}} NOT NULL,
    service {{TEXT}} NOT NULL,
    node    {{TEXT}} NOT NULL,
    form    {{BLOB}} NOT NULL,
    PRIMARY KEY (domain, local, service, node),
    FOREIGN KEY (domain, local) REFERENCES users (domain, local) ON DELETE CASCADE
);
