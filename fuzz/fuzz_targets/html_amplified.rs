//! HTML to text on large documents made from small inputs: the input after its first byte is
//! repeated (first byte + 1) x 64 times, up to 2 MB, so that a repeated `<div>`, `<table><tr>
//! <td>` or `</p><p><b>` becomes a deep or wide document. Any document must convert within one
//! second of CPU (issue #8: bounded work per mail): a slower one is a crash.
#![no_main]

use std::time::Duration;

use klachtd::mail::html::{Converter, Limit, html_to_text_with};
use libfuzzer_sys::fuzz_target;

const MAX_BYTES: usize = 2 * 1024 * 1024;

fn cpu_time() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // The process's CPU: html2text runs on a thread of its own (klachtd::mail::html).
    // SAFETY: clock_gettime only writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fuzz_target!(|data: &[u8]| {
    let Some((&factor, unit)) = data.split_first() else {
        return;
    };
    let unit = String::from_utf8_lossy(unit);
    if unit.is_empty() {
        return;
    }
    let times = ((usize::from(factor) + 1) * 64)
        .min(MAX_BYTES / unit.len())
        .max(1);
    let html = unit.repeat(times);
    let started = cpu_time();
    let (_, converter) = html_to_text_with(&html);
    let took = cpu_time() - started;
    assert_ne!(
        converter,
        Converter::Strip(Limit::Time),
        "html2text ran past its deadline"
    );
    assert!(
        took < Duration::from_secs(1),
        "{} bytes took {took:?} of CPU",
        html.len()
    );
});
