-- Whether a committed source key is also marked processed at the source (IMAP \Seen and MOVE,
-- Maildir new/ -> cur/). A crash between the commit and the marking leaves marked = 0, and the
-- next drain marks those first: over IMAP the saved UID position is already past them.
-- Keys recorded before this migration were marked by the code of the time right after their
-- commit: taken as marked (re-flagging them all could undo a person's "mark as unread").
ALTER TABLE source_keys ADD COLUMN marked INTEGER NOT NULL DEFAULT 0;
UPDATE source_keys SET marked = 1;
CREATE INDEX source_keys_unmarked ON source_keys(source, seq) WHERE marked = 0;
