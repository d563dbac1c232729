//! klachtd: email-driven complaint intake for small Dutch organisations.
//!
//! Map of the crate (the pure core has no I/O, no async and no clock):
//!
//! - [`domain`]: the pure core. Value types (`ComplaintRef`, `EmailAddress`, `MessageId`),
//!   classification of a parsed mail (automatic, bounce, spam, threading decision), the
//!   Dutch working-day calendar, the procedure/deadline engine, routing rules, quote
//!   stripping, the original of a forwarded mail, staff command parsing, the complaint
//!   lifecycle state machine, signed reply tokens and greeting names.
//! - [`config`]: settings from TOML plus `KLACHTD__SECTION__KEY` overrides, validated at once.
//! - [`cpu`]: keeps the process on one CPU (`[runtime] single_cpu`), measured to be faster.
//! - [`clock`]: the settable clock every adapter and service gets its time from.
//! - [`mail`]: mail-parser in (`parse`), Handlebars templates and lettre messages out.
//! - [`mailbox`]: the mail source trait and its adapters (Maildir, IMAP).
//! - [`outgoing`]: the transport trait and its adapters (outbox directory, SMTP).
//! - [`store`]: the store trait, its error, and the SQLite implementation.
//! - [`service`]: ingest (mail -> one transaction), the outbox sender, the scheduler.
//! - [`tls`]: the rustls client configuration (verified certificates, optional CA file).
//! - [`app`]: wires adapters and supervises the long-running tasks until shutdown.
//! - [`notify`]: systemd's notify protocol (READY, STATUS, WATCHDOG from task heartbeats).
//! - [`backup`]: `klachtd backup` / `restore`: one tar file, verified by its manifest.
//! - [`http`]: the optional health and metrics listener (`/healthz`, `/readyz`, `/metrics`).

pub mod app;
pub mod backup;
pub mod clock;
pub mod config;
pub mod cpu;
pub mod domain;
pub mod http;
pub mod logging;
pub mod mail;
pub mod mailbox;
pub mod notify;
pub mod oauth2;
pub mod outgoing;
pub mod panics;
pub mod procedure_runtime;
pub mod service;
pub mod store;
pub mod tls;
