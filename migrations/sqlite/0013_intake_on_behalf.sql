-- Issue #10: a complaint a staff member registers on behalf of someone (#nieuw, a forward):
-- who took it in (`channel`, from 0001, says how it reached us).
ALTER TABLE complaints ADD COLUMN received_by TEXT;
