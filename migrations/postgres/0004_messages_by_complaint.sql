-- A complaint's first message (`WHERE complaint_id = $1 ORDER BY id LIMIT 1`, read for every
-- complaint the scheduler and staff mail look at): with an index of complaint_id alone the
-- planner may walk the primary key in id order until it meets the complaint, a cost that
-- grows with the register (bench.sh part p: 0.6 ms at 10,000 complaints). In this index the
-- complaint's messages are in id order already. SQLite's index carries the rowid (the id).
CREATE INDEX messages_complaint_order ON messages(complaint_id, id);
DROP INDEX messages_complaint;
