-- Issue #11, retention and erasure: a complaint's personal data is removed once its
-- procedure's retention period has passed (or at the person's request), and a statistics row
-- stays.
--
-- History stays append-only, with one exception: removing personal data from a row. The only
-- update allowed empties `detail` and takes the address out of `actor` (`mail:a@b` becomes
-- `mail`); when, by whom and what happened stay as they were.
DROP TRIGGER history_append_only_update;
CREATE TRIGGER history_append_only_update BEFORE UPDATE ON history
WHEN NOT (NEW.id IS OLD.id
          AND NEW.complaint_id IS OLD.complaint_id
          AND NEW.at IS OLD.at
          AND NEW.event IS OLD.event
          AND NEW.detail = ''
          AND instr(NEW.actor, '@') = 0)
BEGIN SELECT RAISE(ABORT, 'history is append-only'); END;

-- A blob (raw mail, attachment) may be shared by several rows: after a purge it is deleted
-- only when no remaining row names it. Index searches, not scans of every message.
CREATE INDEX messages_raw ON messages(raw_sha256);
CREATE INDEX attachments_sha ON attachments(sha256);
