//! One test binary for everything that talks to a real Dovecot and Postfix on 127.0.0.1,
//! started once for the whole binary by `scripts/mailstack.sh` (see [`stack`]):
//!
//! - [`adapters`]: the IMAP source and the SMTP transport, called directly (async tests);
//! - [`e2e`]: end to end, the real `klachtd` binary run as a daemon or once against the stack
//!   (blocking tests);
//! - [`instances`]: three `klachtd run` on one PostgreSQL database, the leader killed again
//!   and again during a backlog (issue #12; needs `KLACHTD_TEST_PG`).
//!
//! Without the packages (or without root) the tests skip loudly, unless
//! `KLACHTD_REQUIRE_STACK` is set (CI), when they fail.
//!
//! Both kinds run in parallel in this one process against the one stack: every test uses its
//! own mailbox addresses, and the tests that stop a server or load the machine take the write
//! half of the one [`stack::DISRUPT`] lock, all the others the read half.

mod adapters;
/// The harness of the other test binaries, for its clock, its Maildir writer and its
/// PostgreSQL databases ([`common::pg`]).
#[path = "../common/mod.rs"]
mod common;
mod e2e;
mod instances;
mod provider;
mod stack;
