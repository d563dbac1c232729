-- Issue #10: a complaint a staff member registers on behalf of someone (#nieuw, a forward):
-- who took it in (`channel`, from 0001, says how it reached us).
ALTER TABLE complaints ADD COLUMN received_by TEXT;
-- Why a closed complaint was reopened (#heropen): a reopened complaint always has a reason.
ALTER TABLE complaints ADD COLUMN reopen_reason TEXT;
