//! Working-day calendar (filled in by the procedure-engine work).
