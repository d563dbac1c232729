//! The mail parser on any bytes: `klachtd::mail::parse::parse` must return, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = klachtd::mail::parse::parse(data);
});
