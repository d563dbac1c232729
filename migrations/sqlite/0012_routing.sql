-- [[routing]]: the roles told in place of the receiving role, and the rule that chose them.
ALTER TABLE complaints ADD COLUMN routed_roles TEXT;
ALTER TABLE complaints ADD COLUMN routing_rule TEXT;
