//! The store trait and its SQLite implementation.
