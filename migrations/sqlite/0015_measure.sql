-- Issue #11: recommendations and measures against new complaints (#maatregel; seeds 003, 004),
-- one per line.
ALTER TABLE complaints ADD COLUMN measure TEXT;
