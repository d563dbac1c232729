//! Bounded work per mail (issue #8 finding 7), through the real binary: a mail far above
//! `limits.max_mail_bytes` and a huge folded subject keep memory under
//! 3 x max_mail_bytes + 32 MB above what the same binary takes for a small mail, and what we
//! store and send about them stays small. (The bound was 3 x max_mail_bytes + 64 MB in all;
//! the unoptimised test binary alone grew past 40 MB as features came, while what a mail
//! costs did not change.)
//!
//! One test in this binary on purpose: the peak RSS is read with getrusage(RUSAGE_CHILDREN),
//! the maximum over every child this process has waited for, so no other test may run here.

mod common;

use common::*;

const MB: u64 = 1024 * 1024;

/// The largest resident set of any child process so far, in bytes.
fn children_peak_rss() -> u64 {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    assert_eq!(rc, 0, "getrusage");
    // Linux reports ru_maxrss in KiB.
    u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024
}

/// `baseline`: the peak RSS of a `run --once` on one small mail.
fn bound(limit: u64, baseline: u64) -> u64 {
    baseline + 3 * limit + 32 * MB
}

fn big_attachment_mail(from: &str, bytes: usize) -> Vec<u8> {
    let mut mail = Mail::new(from, "Scan van de brief")
        .header("Content-Type", "multipart/mixed; boundary=\"z\"")
        .body("")
        .build();
    mail.truncate(mail.len() - 2);
    mail.extend_from_slice(
        b"--z\r\nContent-Type: text/plain\r\n\r\nZie de scan.\r\n--z\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"scan.png\"\r\n\r\n",
    );
    let line = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n";
    while mail.len() < bytes {
        mail.extend_from_slice(line.as_bytes());
    }
    mail.extend_from_slice(b"--z--\r\n");
    mail
}

#[test]
fn one_mail_stays_within_its_memory_and_size_bounds() {
    let limit = 25 * MB;

    // What the binary takes for a small mail: the base every bound is above.
    let app = TestApp::spawn();
    app.deliver(&Mail::new("klein@ouders.example.nl", "Een gewone klacht").build());
    app.run_once();
    assert_eq!(app.list().len(), 1);
    let baseline = children_peak_rss();
    eprintln!("baseline peak RSS: {} MB", baseline / MB);
    assert!(baseline < 128 * MB, "baseline {} MB", baseline / MB);

    // A 100 MB mail with the default 25 MB limit.
    let app = TestApp::spawn();
    app.deliver(&big_attachment_mail(
        "scan@ouders.example.nl",
        100 * MB as usize,
    ));
    app.run_once();
    let peak = children_peak_rss();
    eprintln!("peak RSS so far: {} MB", peak / MB);
    assert!(
        peak < bound(limit, baseline),
        "100 MB mail: peak RSS {} MB, bound {} MB",
        peak / MB,
        bound(limit, baseline) / MB
    );
    assert_eq!(app.list().len(), 1, "registered with its headers and text");

    // A 50 MB body on one line.
    let app = TestApp::spawn();
    let mut mail = Mail::new("lang@ouders.example.nl", "Een lange regel")
        .body("")
        .build();
    mail.extend(std::iter::repeat_n(b'a', 50 * MB as usize));
    mail.extend_from_slice(b"\r\n");
    app.deliver(&mail);
    app.run_once();
    let peak = children_peak_rss();
    eprintln!("peak RSS so far: {} MB", peak / MB);
    assert!(
        peak < bound(limit, baseline),
        "50 MB line: peak RSS {} MB, bound {} MB",
        peak / MB,
        bound(limit, baseline) / MB
    );
    assert_eq!(app.list().len(), 1);

    // A 10 MB folded subject (under the size limit: the raw mail keeps all of it).
    let app = TestApp::spawn();
    let subject = "Klacht over het rooster en ".repeat(10 * MB as usize / 27);
    let folded = subject.replace(" en ", " en\r\n ");
    app.deliver(&Mail::new("onderwerp@ouders.example.nl", &folded).build());
    app.run_once();
    let peak = children_peak_rss();
    eprintln!("peak RSS so far: {} MB", peak / MB);
    assert!(
        peak < bound(limit, baseline),
        "10 MB subject: peak RSS {} MB, bound {} MB",
        peak / MB,
        bound(limit, baseline) / MB
    );
    let list = app.list();
    assert_eq!(list.len(), 1);
    let stored = list[0]["subject"].as_str().unwrap_or("");
    assert!(stored.chars().count() <= 998, "{}", stored.len());
    for sent in app.sent() {
        assert!(
            sent.raw.len() < 64 * 1024,
            "{} is {} bytes",
            sent.subject,
            sent.raw.len()
        );
    }
    let db = std::fs::metadata(app.data_dir.join("klachtd.db"))
        .map(|m| m.len())
        .unwrap_or(0);
    let wal = std::fs::metadata(app.data_dir.join("klachtd.db-wal"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(db + wal < 4 * MB, "database {} + WAL {} bytes", db, wal);
}
