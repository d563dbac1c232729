-- Raw mails and attachments, when `database.blobs = "database"`: instances on several hosts
-- then need no shared disk. Content-addressed like the files under the data directory.
CREATE TABLE blobs (
    kind   TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    bytes  BYTEA NOT NULL,
    PRIMARY KEY (kind, sha256)
);
