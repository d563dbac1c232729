-- klachtd schema (SQLite). Times are RFC 3339 UTC text; they sort as text.

CREATE TABLE ref_counters (
    prefix TEXT NOT NULL,
    year   INTEGER NOT NULL,
    last   INTEGER NOT NULL,
    PRIMARY KEY (prefix, year)
);

CREATE TABLE complaints (
    id                  INTEGER PRIMARY KEY,
    reference           TEXT NOT NULL UNIQUE,
    ref_prefix          TEXT NOT NULL,
    ref_year            INTEGER NOT NULL,
    ref_number          INTEGER NOT NULL,
    received_at         TEXT NOT NULL,
    channel             TEXT NOT NULL DEFAULT 'email',
    complainant_address TEXT NOT NULL,
    complainant_name    TEXT,
    subject             TEXT NOT NULL,
    kind                TEXT NOT NULL DEFAULT 'klacht',
    status              TEXT NOT NULL DEFAULT 'open',
    severity            TEXT NOT NULL DEFAULT 'normal',
    serious_keywords    TEXT,
    related_id          INTEGER REFERENCES complaints(id),
    language            TEXT NOT NULL,
    procedure_name      TEXT NOT NULL,
    procedure_version   TEXT NOT NULL,
    category            TEXT,
    cause               TEXT,
    solution            TEXT,
    handler             TEXT,
    incident_kind       TEXT,
    agreement           TEXT,
    satisfaction        TEXT,
    round               INTEGER NOT NULL DEFAULT 0,
    extended_weeks      INTEGER NOT NULL DEFAULT 0,
    void_reason         TEXT,
    voided_at           TEXT,
    created_at          TEXT NOT NULL,
    UNIQUE (ref_prefix, ref_year, ref_number)
);
CREATE INDEX complaints_status ON complaints(status);
CREATE INDEX complaints_complainant ON complaints(complainant_address);

-- Every mail in; complaint_id NULL with unfiled_reason set = unfiled.
CREATE TABLE messages (
    id             INTEGER PRIMARY KEY,
    complaint_id   INTEGER REFERENCES complaints(id),
    dedupe_key     TEXT NOT NULL UNIQUE,
    message_id     TEXT,
    source         TEXT NOT NULL,
    source_key     TEXT NOT NULL,
    received_at    TEXT NOT NULL,
    sent_date      TEXT,
    from_address   TEXT NOT NULL,
    from_name      TEXT,
    reply_to       TEXT,
    to_addresses   TEXT NOT NULL DEFAULT '',
    subject        TEXT NOT NULL,
    in_reply_to    TEXT,
    references_ids TEXT,
    body_text      TEXT NOT NULL,
    raw_sha256     TEXT NOT NULL,
    raw_size       INTEGER NOT NULL,
    raw_kept       TEXT NOT NULL DEFAULT 'whole',
    classification TEXT NOT NULL,
    automatic      TEXT,
    unfiled_reason TEXT,
    created_at     TEXT NOT NULL
);
CREATE INDEX messages_message_id ON messages(message_id);
CREATE INDEX messages_complaint ON messages(complaint_id);

CREATE TABLE attachments (
    id             INTEGER PRIMARY KEY,
    message_row    INTEGER NOT NULL REFERENCES messages(id),
    name           TEXT NOT NULL,
    content_type   TEXT NOT NULL,
    size           INTEGER NOT NULL,
    sha256         TEXT,
    refused_reason TEXT
);

-- What each source has handed over and we committed: (source, key) is never ingested twice.
CREATE TABLE source_keys (
    source     TEXT NOT NULL,
    key        TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    outcome    TEXT NOT NULL,
    PRIMARY KEY (source, key)
);

CREATE TABLE quarantine (
    id           INTEGER PRIMARY KEY,
    source       TEXT NOT NULL,
    source_key   TEXT NOT NULL,
    message_id   TEXT,
    received_at  TEXT NOT NULL,
    reason       TEXT NOT NULL,
    raw_sha256   TEXT NOT NULL,
    raw_size     INTEGER NOT NULL,
    status       TEXT NOT NULL DEFAULT 'held',
    released_at  TEXT,
    created_at   TEXT NOT NULL
);

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    complaint_id    INTEGER REFERENCES complaints(id),
    template        TEXT NOT NULL,
    message_id      TEXT NOT NULL UNIQUE,
    envelope_from   TEXT NOT NULL,
    recipients      TEXT NOT NULL,
    recipient_role  TEXT,
    subject         TEXT NOT NULL,
    raw             BLOB NOT NULL,
    status          TEXT NOT NULL DEFAULT 'queued',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    sent_at         TEXT,
    bounced_at      TEXT,
    bounce_reason   TEXT,
    alerted         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX outbox_due ON outbox(status, next_attempt_at);
CREATE INDEX outbox_recipients ON outbox(template, recipients, created_at);

-- Append-only: every message in and out and every change, with time and actor.
CREATE TABLE history (
    id           INTEGER PRIMARY KEY,
    complaint_id INTEGER REFERENCES complaints(id),
    at           TEXT NOT NULL,
    actor        TEXT NOT NULL,
    event        TEXT NOT NULL,
    detail       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX history_complaint ON history(complaint_id, id);
CREATE TRIGGER history_append_only_update BEFORE UPDATE ON history
BEGIN SELECT RAISE(ABORT, 'history is append-only'); END;

-- Procedure progress (milestones) and actions the scheduler ran, each exactly once.
CREATE TABLE milestones (
    complaint_id INTEGER NOT NULL REFERENCES complaints(id),
    milestone    TEXT NOT NULL,
    completed_at TEXT NOT NULL,
    actor        TEXT NOT NULL,
    PRIMARY KEY (complaint_id, milestone)
);

CREATE TABLE actions_done (
    complaint_id INTEGER NOT NULL REFERENCES complaints(id),
    action_key   TEXT NOT NULL,
    due_at       TEXT NOT NULL,
    done_at      TEXT NOT NULL,
    PRIMARY KEY (complaint_id, action_key)
);

CREATE TABLE jobs_done (
    job     TEXT NOT NULL,
    fire_at TEXT NOT NULL,
    done_at TEXT NOT NULL,
    PRIMARY KEY (job, fire_at)
);

CREATE TABLE settings_kv (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
