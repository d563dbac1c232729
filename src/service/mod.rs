//! Services: ingest, outbox sender, scheduler.
