//! Procedure model (filled in by the procedure-engine work).
