-- record_source_key takes MAX(seq) per source for every mail: without this index that is a
-- scan of every key the source ever had, and ingest slows as the register grows.
CREATE INDEX source_keys_seq ON source_keys(source, seq);
