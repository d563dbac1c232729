-- The claim takes the oldest ids among the mails still to send (`ORDER BY id LIMIT n FOR
-- UPDATE SKIP LOCKED`). Over the primary key that walks every mail already sent first, a
-- cost that grows with the outbox (bench.sh part p: 12 ms a claim at 10,000 complaints);
-- this index holds only the pending ones.
CREATE INDEX outbox_pending ON outbox(id) WHERE status IN ('queued', 'sending');
