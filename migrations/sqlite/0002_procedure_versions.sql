-- The exact procedure text each complaint started with: an edited procedure applies to new
-- complaints only, open ones keep theirs.
CREATE TABLE procedure_versions (
    name       TEXT NOT NULL,
    version    TEXT NOT NULL,
    text       TEXT NOT NULL,
    first_used TEXT NOT NULL,
    PRIMARY KEY (name, version)
);
