-- FAST tokens (XEP-0484), storage/fast.go: per account and SASL2 user
-- agent, the token in use and one issued since. Only the SHA-256 of the
-- client's proof is kept (verifier), never the token. Rows hang on the
-- account, so deleting it deletes them.
CREATE TABLE fast_tokens (
    domain     {{TEXT}} NOT NULL,
    local      {{TEXT}} NOT NULL,
    agent      {{TEXT}} NOT NULL,
    verifier   {{BLOB}} NOT NULL,
    mechanism  {{TEXT}} NOT NULL,
    responder  {{BLOB}} NOT NULL,
    expires_at BIGINT NOT NULL,
    last_count BIGINT NOT NULL,
    used       BOOLEAN NOT NULL,
    PRIMARY KEY (domain, local, agent, verifier),
    FOREIGN KEY (domain, local) REFERENCES users (domain, local) ON DELETE CASCADE
);

-- The server's own keys (storage.Secrets), made on first use.
CREATE TABLE server_secrets (
    name       {{TEXT}} NOT NULL PRIMARY KEY,
    secret     {{BLOB}} NOT NULL,
    created_at BIGINT NOT NULL
);
