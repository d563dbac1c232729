//! The pure core: no I/O, no async, no clock. Everything here is a function of its inputs, so
//! it is tested with plain unit and property tests.

pub mod calendar;
pub mod classify;
pub mod command;
pub mod complaint;
pub mod digest;
pub mod display;
pub mod forward;
pub mod greeting;
pub mod language;
pub mod procedure;
pub mod quote;
pub mod report;
pub mod retention;
pub mod routing;
pub mod text;
pub mod token;
pub mod types;
