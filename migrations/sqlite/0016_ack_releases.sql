-- The hourly acknowledgement cap (limits.acknowledgements_per_hour) asks, for every
-- acknowledgement queued, when the cap-th latest one was released. Over the outbox that was
-- `ORDER BY next_attempt_at DESC OFFSET cap - 1`: a walk over every acknowledgement of the
-- last hour, up to the cap, for each new one (bench.sh: 4 ms a mail at 10,000 with the cap
-- lifted). Here each queued acknowledgement gets the next number; releases only grow with
-- it (each is at or after the clock, and past the cap one hour after the cap-th latest), so
-- the cap-th latest release is the row numbered cap - 1 below the last: one index lookup.
-- Rows more than the cap below the last are removed as new ones come.
CREATE TABLE ack_releases (
    seq        INTEGER PRIMARY KEY,
    release_at TEXT NOT NULL
);
-- The acknowledgements already queued, in release order.
INSERT INTO ack_releases (seq, release_at)
SELECT ROW_NUMBER() OVER (ORDER BY next_attempt_at, id), next_attempt_at
FROM outbox WHERE template = 'acknowledgement';
