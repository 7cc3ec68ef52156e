-- Accounts and their SCRAM credentials (storage.Users).

CREATE TABLE users (
    domain     {{TEXT}} NOT NULL,
    local      {{TEXT}} NOT NULL,
    -- Unix time in microseconds: one integer type that both databases
    -- store and compare the same way.
    created_at BIGINT NOT NULL,
    PRIMARY KEY (domain, local)
);

-- One row per SCRAM mechanism an account can use (RFC 5802 §3); no password
-- is ever stored.
CREATE TABLE credentials (
    domain     {{TEXT}} NOT NULL,
    local      {{TEXT}} NOT NULL,
    mechanism  {{TEXT}} NOT NULL,
    salt       {{BLOB}} NOT NULL,
    iterations INTEGER NOT NULL,
    stored_key {{BLOB}} NOT NULL,
    server_key {{BLOB}} NOT NULL,
    PRIMARY KEY (domain, local, mechanism),
    FOREIGN KEY (domain, local) REFERENCES users (domain, local) ON DELETE CASCADE
);
