-- Scale: every per-complaint lookup of `list` and `show` is an index search, not a scan of
-- the whole outbox or attachment table (6,000 complaints took 235 s to list without these).
CREATE INDEX outbox_complaint ON outbox(complaint_id);
CREATE INDEX attachments_message ON attachments(message_row);
-- The register's order (`list`), read page by page.
CREATE INDEX complaints_register_order ON complaints(ref_year, ref_prefix, ref_number);

-- When the scheduler next has something to do for a complaint (the earliest planned action not
-- yet done, as RFC 3339 text), so its wake-up and its scan read an index instead of planning
-- every open complaint. '' = not known (a new row, or something the plan depends on changed):
-- it sorts before every time, so the scheduler looks at it at once and writes the real value.
-- NULL = nothing planned any more.
ALTER TABLE complaints ADD COLUMN next_due_at TEXT DEFAULT '';
CREATE INDEX complaints_next_due ON complaints(status, next_due_at);

-- Whatever a plan is computed from (milestones, actions done, the complaint's progress) makes
-- the stored time unknown again, whichever code path or process wrote it.
CREATE TRIGGER milestones_insert_replan AFTER INSERT ON milestones
BEGIN UPDATE complaints SET next_due_at = '' WHERE id = NEW.complaint_id; END;
CREATE TRIGGER milestones_update_replan AFTER UPDATE ON milestones
BEGIN UPDATE complaints SET next_due_at = '' WHERE id IN (OLD.complaint_id, NEW.complaint_id); END;
CREATE TRIGGER milestones_delete_replan AFTER DELETE ON milestones
BEGIN UPDATE complaints SET next_due_at = '' WHERE id = OLD.complaint_id; END;
CREATE TRIGGER actions_done_insert_replan AFTER INSERT ON actions_done
BEGIN UPDATE complaints SET next_due_at = '' WHERE id = NEW.complaint_id; END;
CREATE TRIGGER actions_done_delete_replan AFTER DELETE ON actions_done
BEGIN UPDATE complaints SET next_due_at = '' WHERE id = OLD.complaint_id; END;
CREATE TRIGGER complaints_progress_replan
AFTER UPDATE OF status, severity, received_at, round, extended_weeks, procedure_name,
    procedure_version ON complaints
BEGIN UPDATE complaints SET next_due_at = '' WHERE id = NEW.id; END;

-- Who holds an outbox lease (`host boot-id pid-namespace pid start-time`): a lease whose owner
-- process is gone from this host is free at once, not after the lease runs out.
ALTER TABLE outbox ADD COLUMN lease_owner TEXT;
