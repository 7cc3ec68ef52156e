-- HTTP File Upload (XEP-0363), storage/upload.go. One row per slot, from
-- the slot request on; uploaded_at is 0 until the PUT completes, and
-- uploading is set while one PUT writes the file, so that a second is
-- refused. The bytes are files named by id under the module's directory.
-- Rows hang on the owner's account, so deleting it deletes them.
CREATE TABLE upload_files (
    id           {{TEXT}} NOT NULL PRIMARY KEY,
    domain       {{TEXT}} NOT NULL,
    local        {{TEXT}} NOT NULL,
    name         {{TEXT}} NOT NULL,
    size         BIGINT NOT NULL,
    content_type {{TEXT}} NOT NULL,
    created_at   BIGINT NOT NULL,
    uploaded_at  BIGINT NOT NULL,
    uploading    BOOLEAN NOT NULL,
    FOREIGN KEY (domain, local) REFERENCES users (domain, local) ON DELETE CASCADE
);

-- An account's usage (quota, daily limit), and the cascade from users.
CREATE INDEX upload_files_owner ON upload_files (domain, local, created_at);
-- The expiry job: uploads by age.
CREATE INDEX upload_files_created ON upload_files (created_at);
