-- The per-address acknowledgement cap counts a normalised address (case, +tag, Gmail dots and
-- googlemail.com), and the hourly cap holds acknowledgements back by their release time.
ALTER TABLE outbox ADD COLUMN recipient_key TEXT;
CREATE INDEX outbox_recipient_key ON outbox(template, recipient_key, created_at);
CREATE INDEX outbox_template_due ON outbox(template, next_attempt_at);
CREATE INDEX quarantine_raw ON quarantine(raw_sha256, status);
