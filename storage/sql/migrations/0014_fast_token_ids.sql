-- FAST tokens (XEP-0484) are derived by the server from a random id and a
-- key kept outside the database (c2s, data_dir/fast-secret), so that the
-- channel-binding mechanisms (HT-SHA-256-ENDP, -EXPR) can be checked and a
-- copy of the database still lets nobody log in. 0013 kept the SHA-256 of
-- the HT-SHA-256-NONE proof instead, from which no other proof can be
-- checked: those tokens are dropped. Their clients get not-authorized,
-- fall back to their password (XEP-0484 §"Client responsibilities") and
-- are given a new token.
DROP TABLE fast_tokens;

CREATE TABLE fast_tokens (
    domain     {{TEXT}} NOT NULL,
    local      {{TEXT}} NOT NULL,
    agent      {{TEXT}} NOT NULL,
    token_id   {{BLOB}} NOT NULL,
    mechanism  {{TEXT}} NOT NULL,
    expires_at BIGINT NOT NULL,
    last_count BIGINT NOT NULL,
    used       BOOLEAN NOT NULL,
    PRIMARY KEY (domain, local, agent, token_id),
    FOREIGN KEY (domain, local) REFERENCES users (domain, local) ON DELETE CASCADE
);
