//! The store's promises, checked on every backend with the same test bodies: on SQLite (a
//! temporary file, always) and on PostgreSQL (a fresh database per test on the server in
//! `KLACHTD_TEST_PG`, see `scripts/pgcluster.sh`). Without `KLACHTD_TEST_PG` the PostgreSQL
//! tests say they skip and pass, unless `KLACHTD_REQUIRE_PG=1`: then they fail.
//!
//! Concurrency is real: several tasks on a multi-threaded runtime, on two store instances
//! (two pools, as two processes would have), each transaction retried whole when the store
//! calls its error retryable (SQLite busy, PostgreSQL serialization failure or deadlock).

#[path = "common/pg.rs"]
mod pg;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use klachtd::store::{self, Claim, NewComplaint, NewOutbox, Store, StoreError, StoreTx};

// ---- backends --------------------------------------------------------------------------------

/// One test's database and how to open it. Dropping it removes the database.
enum Backend {
    Sqlite {
        _dir: tempfile::TempDir,
        url: String,
    },
    Postgres(pg::PgDatabase),
}

impl Backend {
    fn sqlite() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("klachtd-store-")
            .tempdir()
            .expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("klachtd.db").display());
        Backend::Sqlite { _dir: dir, url }
    }

    /// `None` (after saying so) when no server is configured and none is required.
    fn postgres(test: &str) -> Option<Self> {
        match pg::server() {
            Some(server) => Some(Backend::Postgres(server.create_database("store"))),
            None if std::env::var("KLACHTD_REQUIRE_PG").as_deref() == Ok("1") => {
                panic!("KLACHTD_REQUIRE_PG=1 but KLACHTD_TEST_PG is not set (scripts/pgcluster.sh)")
            }
            None => {
                eprintln!("skipped {test} on PostgreSQL: KLACHTD_TEST_PG is not set");
                None
            }
        }
    }

    /// A store instance of its own (its own pool): call twice for two "processes".
    async fn open(&self) -> Arc<dyn Store> {
        let (url, password) = match self {
            Backend::Sqlite { url, .. } => (url.as_str(), None),
            Backend::Postgres(db) => (db.url.as_str(), db.password()),
        };
        store::open(url, password)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"))
    }
}

/// Each body runs as `sqlite::NAME` and `postgres::NAME`.
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::Backend::sqlite()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    if let Some(backend) = super::Backend::postgres(stringify!($name)) {
                        super::$name(backend).await;
                    }
                }
            )*
        }
    };
}

on_every_backend!(
    references_are_gapless_under_concurrent_writers,
    outbox_ids_are_unique_under_concurrent_enqueuers,
    concurrent_claimers_never_get_the_same_mail,
    source_keys_are_recorded_once_and_marked,
    jobs_are_done_once_and_settings_overwrite,
    a_dropped_transaction_leaves_nothing,
    the_nth_latest_acknowledgement_release_is_found_and_old_ones_fall_out,
    a_number_rolled_back_to_a_savepoint_is_given_again,
);

// ---- helpers ---------------------------------------------------------------------------------

const WRITERS: usize = 8;
const TRANSACTIONS: usize = 25;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("test time")
        .with_timezone(&Utc)
}

fn t0() -> DateTime<Utc> {
    at("2026-11-23T11:00:00Z")
}

fn complaint(n: usize) -> NewComplaint {
    NewComplaint {
        prefix: "KL".into(),
        year: 2026,
        received_at: t0(),
        complainant_address: format!("klager{n}@example.nl"),
        complainant_name: Some(format!("Klager {n}")),
        subject: format!("Klacht {n}"),
        kind: "complaint".into(),
        severity: "normal".into(),
        serious_keywords: None,
        related_id: None,
        language: "nl".into(),
        procedure_name: "mzo".into(),
        procedure_version: "1".into(),
        created_at: t0(),
    }
}

fn mail(id: i64, tag: &str) -> NewOutbox {
    NewOutbox {
        id,
        envelope_from: format!("bounce+{id}@example.org"),
        complaint_id: None,
        template: "acknowledgement".into(),
        message_id: format!("<{tag}@example.org>"),
        recipients: vec![format!("{tag}@example.nl")],
        recipient_role: None,
        subject: format!("Ontvangen {tag}"),
        raw: format!("Subject: {tag}\r\n\r\nbody\r\n").into_bytes(),
        created_at: t0(),
        not_before: None,
        recipient_key: None,
    }
}

/// Run `work` in a transaction of its own and commit, the whole of it again (after a short,
/// growing pause) while the store calls the failure retryable; any other failure panics.
async fn in_transaction<T, F, Fut>(store: &Arc<dyn Store>, what: &str, work: F) -> T
where
    F: Fn(Box<dyn StoreTx>) -> Fut,
    Fut: Future<Output = Result<(Box<dyn StoreTx>, T), StoreError>>,
{
    const ATTEMPTS: u64 = 200;
    for attempt in 1..=ATTEMPTS {
        let tried = async {
            let tx = store.begin().await?;
            let (tx, value) = work(tx).await?;
            tx.commit().await?;
            Ok::<T, StoreError>(value)
        }
        .await;
        match tried {
            Ok(value) => return value,
            Err(e) if e.is_retryable() && attempt < ATTEMPTS => {
                tokio::time::sleep(Duration::from_millis(attempt.min(20))).await;
            }
            Err(e) => panic!("{what} (attempt {attempt}): {e:?}"),
        }
    }
    unreachable!("the last attempt returns or panics")
}

/// Two store instances: as two processes on one database.
async fn two_stores(backend: &Backend) -> [Arc<dyn Store>; 2] {
    [backend.open().await, backend.open().await]
}

// ---- the bodies ------------------------------------------------------------------------------

/// 8 writers × 25 transactions, each taking the next number and registering a complaint with
/// it: the committed numbers are exactly 1..=200, and so is the register.
async fn references_are_gapless_under_concurrent_writers(backend: Backend) {
    let stores = two_stores(&backend).await;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = stores[w % 2].clone();
        tasks.push(tokio::spawn(async move {
            let mut numbers = Vec::new();
            for t in 0..TRANSACTIONS {
                let n = w * TRANSACTIONS + t;
                let number = in_transaction(&store, "register a complaint", |mut tx| async move {
                    let number = tx.next_reference_number("KL", 2026).await?;
                    tx.insert_complaint(&complaint(n), number).await?;
                    Ok((tx, number))
                })
                .await;
                numbers.push(number);
            }
            numbers
        }));
    }
    let mut numbers = Vec::new();
    for task in tasks {
        numbers.extend(task.await.expect("writer task"));
    }
    let total = WRITERS * TRANSACTIONS;
    let distinct: BTreeSet<u32> = numbers.iter().copied().collect();
    assert_eq!(numbers.len(), total);
    assert_eq!(distinct.len(), total, "a number was handed out twice");
    assert_eq!(
        distinct,
        (1..=total as u32).collect::<BTreeSet<u32>>(),
        "numbers are not exactly 1..={total}"
    );

    let register = stores[0].list_complaints(None).await.expect("register");
    let stored: Vec<(String, i64, i64)> = register
        .iter()
        .map(|c| {
            (
                c.position.prefix.clone(),
                c.position.year,
                c.position.number,
            )
        })
        .collect();
    let expected: Vec<(String, i64, i64)> = (1..=total as i64)
        .map(|n| ("KL".to_string(), 2026, n))
        .collect();
    assert_eq!(
        stored, expected,
        "the register is not KL-2026-0001 up to {total}"
    );
    let complainants: HashSet<&str> = register.iter().map(|c| c.complainant.as_str()).collect();
    assert_eq!(complainants.len(), total, "a complaint was lost or doubled");
}

/// Concurrent transactions each reserving and enqueueing two mails: every id is handed out
/// once, and every mail is stored under the id it was given.
async fn outbox_ids_are_unique_under_concurrent_enqueuers(backend: Backend) {
    let stores = two_stores(&backend).await;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = stores[w % 2].clone();
        tasks.push(tokio::spawn(async move {
            let mut given = Vec::new();
            for t in 0..TRANSACTIONS {
                let pair = in_transaction(&store, "enqueue two mails", |mut tx| async move {
                    let mut pair = Vec::new();
                    for k in 0..2 {
                        let id = tx.reserve_outbox_id().await?;
                        let tag = format!("w{w}t{t}k{k}");
                        let stored = tx.enqueue(&mail(id, &tag)).await?;
                        assert_eq!(stored, id, "enqueue stored {tag} under another id");
                        pair.push((id, tag));
                    }
                    Ok((tx, pair))
                })
                .await;
                given.extend(pair);
            }
            given
        }));
    }
    let mut given: Vec<(i64, String)> = Vec::new();
    for task in tasks {
        given.extend(task.await.expect("enqueuer task"));
    }
    let total = WRITERS * TRANSACTIONS * 2;
    let by_id: BTreeMap<i64, String> = given.iter().cloned().collect();
    assert_eq!(by_id.len(), total, "an outbox id was handed out twice");

    let rows = stores[1].list_outbox(None).await.expect("outbox");
    let stored: BTreeMap<i64, String> = rows.iter().map(|r| (r.id, r.message_id.clone())).collect();
    assert_eq!(rows.len(), total, "outbox rows missing or doubled");
    let expected: BTreeMap<i64, String> = by_id
        .iter()
        .map(|(id, tag)| (*id, format!("<{tag}@example.org>")))
        .collect();
    assert_eq!(stored, expected, "a mail is not stored under its id");
    assert!(
        rows.iter().all(|r| r.status == "queued"),
        "new mail is queued"
    );
}

/// Two claimers on two store instances take the queue in small bites at the same time and
/// mark what they took sent: every mail goes to exactly one of them, once.
async fn concurrent_claimers_never_get_the_same_mail(backend: Backend) {
    const MAILS: usize = 120;
    let stores = two_stores(&backend).await;
    let ids: Vec<i64> = in_transaction(&stores[0], "enqueue the queue", |mut tx| async move {
        let mut ids = Vec::new();
        for n in 0..MAILS {
            let id = tx.reserve_outbox_id().await?;
            ids.push(tx.enqueue(&mail(id, &format!("claim{n}"))).await?);
        }
        Ok((tx, ids))
    })
    .await;
    let now = t0() + chrono::Duration::minutes(1);
    let lease_until = now + chrono::Duration::minutes(10);
    let mut claimers = Vec::new();
    for (c, store) in stores.iter().enumerate() {
        let store = store.clone();
        claimers.push(tokio::spawn(async move {
            let owner = format!("claimer-{c}");
            let mut claimed = Vec::new();
            let mut retries = 0;
            loop {
                let items = match store.claim_outbox(now, lease_until, 3, Some(&owner)).await {
                    Ok(items) => items,
                    Err(e) if e.is_retryable() && retries < 200 => {
                        retries += 1;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        continue;
                    }
                    Err(e) => panic!("{owner} claim: {e:?}"),
                };
                if items.is_empty() {
                    return claimed;
                }
                let got: Vec<i64> = items.iter().map(|i| i.id).collect();
                assert!(
                    items.iter().all(|i| i.attempts == 1),
                    "{owner} got a mail someone had tried: {got:?}"
                );
                let claims: Vec<Claim> = items.iter().map(|i| i.claim()).collect();
                let marked = store.outbox_sent(&claims, now).await.expect("outbox_sent");
                assert_eq!(
                    marked,
                    claims.len() as u64,
                    "{owner} lost a claim it had just made: {got:?}"
                );
                claimed.extend(got);
                // A breath between bites: SQLite's busy handler backs off in growing sleeps,
                // and without one the claimer holding the lock takes nearly the whole queue.
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }));
    }
    let mut per_claimer = Vec::new();
    for c in claimers {
        per_claimer.push(c.await.expect("claimer task"));
    }
    let mut count: BTreeMap<i64, usize> = BTreeMap::new();
    for id in per_claimer.iter().flatten() {
        *count.entry(*id).or_default() += 1;
    }
    let twice: Vec<i64> = count
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| *id)
        .collect();
    assert!(twice.is_empty(), "claimed by both or twice: {twice:?}");
    let claimed: Vec<i64> = count.keys().copied().collect();
    let mut expected = ids.clone();
    expected.sort_unstable();
    assert_eq!(claimed, expected, "not every mail was claimed");
    let rows = stores[0].list_outbox(None).await.expect("outbox");
    assert_eq!(rows.len(), MAILS);
    assert!(
        rows.iter().all(|r| r.status == "sent" && r.attempts == 1),
        "every mail sent after one attempt: {:?}",
        rows.iter()
            .filter(|r| r.status != "sent" || r.attempts != 1)
            .map(|r| (r.id, &r.status, r.attempts))
            .collect::<Vec<_>>()
    );
    let left = stores[1]
        .claim_outbox(now + chrono::Duration::hours(1), lease_until, 10, None)
        .await
        .expect("claim after");
    assert!(left.is_empty(), "a sent mail was claimed again");
}

/// A source key is recorded once (per source); the source's keys are known, the last one is
/// the latest recorded, and the unmarked ones are listed oldest first until marked.
async fn source_keys_are_recorded_once_and_marked(backend: Backend) {
    let store = backend.open().await;
    const SRC: &str = "maildir:/srv/mail";
    const OTHER: &str = "imap:inbox";
    let keys = |ks: &[&str]| ks.iter().map(|k| k.to_string()).collect::<Vec<String>>();

    assert_eq!(store.last_source_key(SRC).await.expect("last"), None);
    let firsts = in_transaction(&store, "record k1 k2", |mut tx| async move {
        let a = tx.record_source_key(SRC, "k1", "registered").await?;
        let again = tx.record_source_key(SRC, "k1", "registered").await?;
        let b = tx.record_source_key(SRC, "k2", "unfiled").await?;
        Ok((tx, (a, again, b)))
    })
    .await;
    assert_eq!(firsts, (true, false, true), "(k1, k1 again, k2)");
    let seconds = in_transaction(&store, "record k1 k3", |mut tx| async move {
        let a = tx.record_source_key(SRC, "k1", "registered").await?;
        let b = tx.record_source_key(SRC, "k3", "registered").await?;
        // Keys belong to their source: the same key elsewhere is new.
        let c = tx.record_source_key(OTHER, "k1", "registered").await?;
        Ok((tx, (a, b, c)))
    })
    .await;
    assert_eq!(
        seconds,
        (false, true, true),
        "(k1 again, k3, k1 of another source)"
    );

    let known = store
        .known_source_keys(SRC, &keys(&["k1", "k2", "k3", "k4"]))
        .await
        .expect("known");
    let expected: HashSet<String> = keys(&["k1", "k2", "k3"]).into_iter().collect();
    assert_eq!(known, expected);
    let known_other = store
        .known_source_keys(OTHER, &keys(&["k1", "k2"]))
        .await
        .expect("known other");
    assert_eq!(
        known_other,
        keys(&["k1"]).into_iter().collect::<HashSet<_>>()
    );
    assert!(
        store
            .known_source_keys(SRC, &[])
            .await
            .expect("known none")
            .is_empty()
    );
    assert_eq!(
        store.last_source_key(SRC).await.expect("last").as_deref(),
        Some("k3")
    );
    assert_eq!(
        store.last_source_key(OTHER).await.expect("last").as_deref(),
        Some("k1")
    );
    assert_eq!(store.last_source_key("nowhere").await.expect("last"), None);

    assert_eq!(
        store.unmarked_source_keys(SRC, 10).await.expect("unmarked"),
        keys(&["k1", "k2", "k3"]),
        "unmarked, oldest first"
    );
    assert_eq!(
        store.unmarked_source_keys(SRC, 2).await.expect("unmarked"),
        keys(&["k1", "k2"]),
        "the limit holds"
    );
    store
        .source_keys_marked(SRC, &keys(&["k1", "k3", "k9"]))
        .await
        .expect("mark");
    assert_eq!(
        store.unmarked_source_keys(SRC, 10).await.expect("unmarked"),
        keys(&["k2"])
    );
    assert_eq!(
        store
            .unmarked_source_keys(OTHER, 10)
            .await
            .expect("unmarked"),
        keys(&["k1"]),
        "marking one source's keys leaves another's alone"
    );
    // Marked keys are still known: a mail is never ingested twice.
    assert_eq!(
        store
            .known_source_keys(SRC, &keys(&["k1", "k3"]))
            .await
            .expect("known"),
        keys(&["k1", "k3"]).into_iter().collect::<HashSet<_>>()
    );
    store
        .source_keys_marked(SRC, &keys(&["k2"]))
        .await
        .expect("mark");
    assert!(
        store
            .unmarked_source_keys(SRC, 10)
            .await
            .expect("unmarked")
            .is_empty()
    );
}

/// A periodic job is done once per fire time; a setting keeps its latest value.
async fn jobs_are_done_once_and_settings_overwrite(backend: Backend) {
    let store = backend.open().await;
    let fire = at("2026-11-23T07:00:00Z");
    let next = at("2026-11-24T07:00:00Z");
    assert!(!store.job_done("digest", fire).await.expect("job_done"));
    let first = in_transaction(&store, "mark digest", |mut tx| async move {
        let done = tx.mark_job_done("digest", fire, fire).await?;
        Ok((tx, done))
    })
    .await;
    assert!(first, "the first mark records it");
    assert!(store.job_done("digest", fire).await.expect("job_done"));
    let second = in_transaction(&store, "mark digest again", |mut tx| async move {
        let done = tx
            .mark_job_done("digest", fire, fire + chrono::Duration::minutes(5))
            .await?;
        Ok((tx, done))
    })
    .await;
    assert!(!second, "the same job and fire time are done once");
    assert!(!store.job_done("digest", next).await.expect("job_done"));
    assert!(!store.job_done("report", fire).await.expect("job_done"));

    assert_eq!(store.get_setting("key").await.expect("get"), None);
    store.put_setting("key", "one").await.expect("put");
    assert_eq!(
        store.get_setting("key").await.expect("get").as_deref(),
        Some("one")
    );
    store.put_setting("key", "two").await.expect("put again");
    assert_eq!(
        store.get_setting("key").await.expect("get").as_deref(),
        Some("two")
    );
    assert_eq!(store.get_setting("other").await.expect("get"), None);
}

/// A transaction dropped without commit undoes everything it did, the reference counter and
/// the reserved outbox id included.
async fn a_dropped_transaction_leaves_nothing(backend: Backend) {
    let store = backend.open().await;
    let fire = at("2026-11-23T07:00:00Z");
    {
        let mut tx = store.begin().await.expect("begin");
        let number = tx.next_reference_number("KL", 2026).await.expect("number");
        assert_eq!(number, 1);
        tx.insert_complaint(&complaint(1), number)
            .await
            .expect("insert complaint");
        let id = tx.reserve_outbox_id().await.expect("reserve");
        tx.enqueue(&mail(id, "dropped")).await.expect("enqueue");
        assert!(
            tx.record_source_key("maildir:x", "k1", "registered")
                .await
                .expect("record")
        );
        assert!(tx.mark_job_done("digest", fire, fire).await.expect("job"));
        drop(tx);
    }
    // The rollback of a dropped transaction may complete after the drop returns: the next
    // write transaction (it waits for the write lock) sees its outcome.
    let number = in_transaction(&store, "after the drop", |mut tx| async move {
        let number = tx.next_reference_number("KL", 2026).await?;
        Ok((tx, number))
    })
    .await;
    assert_eq!(number, 1, "the dropped transaction's number was used up");
    assert!(
        store.list_complaints(None).await.expect("list").is_empty(),
        "a complaint survived"
    );
    assert!(
        store.list_outbox(None).await.expect("outbox").is_empty(),
        "a mail survived"
    );
    assert!(
        store
            .known_source_keys("maildir:x", &["k1".to_string()])
            .await
            .expect("known")
            .is_empty(),
        "a source key survived"
    );
    assert_eq!(
        store.last_source_key("maildir:x").await.expect("last"),
        None
    );
    assert!(
        !store.job_done("digest", fire).await.expect("job"),
        "a job mark survived"
    );
    // The outbox still takes mail, and holds that one only.
    let again = in_transaction(&store, "enqueue after the drop", |mut tx| async move {
        let id = tx.reserve_outbox_id().await?;
        tx.enqueue(&mail(id, "kept")).await?;
        Ok((tx, id))
    })
    .await;
    let rows = store.list_outbox(None).await.expect("outbox");
    assert_eq!(
        rows.iter()
            .map(|r| (r.id, r.message_id.as_str()))
            .collect::<Vec<_>>(),
        vec![(again, "<kept@example.org>")]
    );
}

/// A mail that fails inside a batch is rolled back to its savepoint and the batch goes on:
/// the number it took is given to the next mail (no gap), whether the counter was first
/// taken before the savepoint or inside it, and the next transaction goes on from there.
async fn a_number_rolled_back_to_a_savepoint_is_given_again(backend: Backend) {
    let store = backend.open().await;
    let mut tx = store.begin().await.expect("begin");
    // The counter first taken inside a savepoint that is rolled back.
    tx.savepoint().await.expect("savepoint");
    assert_eq!(tx.next_reference_number("KL", 2026).await.expect("n"), 1);
    tx.insert_complaint(&complaint(100), 1)
        .await
        .expect("insert");
    tx.rollback_to_savepoint().await.expect("rollback");
    let mut numbers = Vec::new();
    for n in 1..=2 {
        tx.savepoint().await.expect("savepoint");
        let number = tx.next_reference_number("KL", 2026).await.expect("n");
        tx.insert_complaint(&complaint(n), number)
            .await
            .expect("insert");
        tx.release_savepoint().await.expect("release");
        numbers.push(number);
    }
    // Taken before this savepoint, numbered again inside it, rolled back.
    tx.savepoint().await.expect("savepoint");
    assert_eq!(tx.next_reference_number("KL", 2026).await.expect("n"), 3);
    tx.insert_complaint(&complaint(101), 3)
        .await
        .expect("insert");
    tx.rollback_to_savepoint().await.expect("rollback");
    let number = tx.next_reference_number("KL", 2026).await.expect("n");
    tx.insert_complaint(&complaint(3), number)
        .await
        .expect("insert");
    numbers.push(number);
    tx.commit().await.expect("commit");
    assert_eq!(numbers, vec![1, 2, 3], "a rolled-back number was skipped");

    let next = in_transaction(&store, "the next transaction", |mut tx| async move {
        let number = tx.next_reference_number("KL", 2026).await?;
        Ok((tx, number))
    })
    .await;
    assert_eq!(
        next, 4,
        "the counter row was not written back as the batch left it"
    );
    let register = store.list_complaints(None).await.expect("register");
    let stored: Vec<(i64, &str)> = register
        .iter()
        .map(|c| (c.position.number, c.complainant.as_str()))
        .collect();
    assert_eq!(
        stored,
        vec![
            (1, "klager1@example.nl"),
            (2, "klager2@example.nl"),
            (3, "klager3@example.nl")
        ],
        "a rolled-back complaint survived, or a kept one was lost"
    );
}

/// The hourly cap's ledger: the n-th latest release is the one recorded n - 1 before the last,
/// when it is after the window's start; fewer than n recorded is none; only the `keep` latest
/// are kept, and a rolled-back record is gone.
async fn the_nth_latest_acknowledgement_release_is_found_and_old_ones_fall_out(backend: Backend) {
    let store = backend.open().await;
    let start = at("2026-11-23T09:00:00Z");
    let minute = |m: i64| start + chrono::Duration::minutes(m);
    let nth = |after: DateTime<Utc>, n: i64| {
        let store = store.clone();
        async move {
            in_transaction(&store, "nth", move |mut tx| async move {
                let t = tx.nth_latest_acknowledgement_release(after, n).await?;
                Ok((tx, t))
            })
            .await
        }
    };
    assert_eq!(nth(start - chrono::Duration::hours(1), 1).await, None);
    // Ten releases a minute apart, keeping the 5 latest.
    in_transaction(&store, "record", move |mut tx| async move {
        for m in 0..10 {
            tx.record_acknowledgement_release(minute(m), 5).await?;
        }
        Ok((tx, ()))
    })
    .await;
    let before = start - chrono::Duration::hours(1);
    assert_eq!(nth(before, 1).await, Some(minute(9)));
    assert_eq!(nth(before, 3).await, Some(minute(7)));
    assert_eq!(nth(before, 5).await, Some(minute(5)));
    // Older than the 5 kept: not found (as if fewer had been recorded).
    assert_eq!(nth(before, 6).await, None);
    assert_eq!(nth(before, 11).await, None);
    // Not after the window's start: none.
    assert_eq!(nth(minute(7), 3).await, None);
    assert_eq!(nth(minute(6), 3).await, Some(minute(7)));
    // A record in a transaction that rolls back is not there.
    {
        let mut tx = store.begin().await.expect("begin");
        tx.record_acknowledgement_release(minute(30), 5)
            .await
            .expect("record");
        drop(tx);
    }
    assert_eq!(nth(before, 1).await, Some(minute(9)));
}
