//! The store's conformance suite: every test runs on SQLite, and on
//! PostgreSQL when `GUICHET_TEST_POSTGRES` is set — same behaviour on both.

use guichet_core::{Command, Dossier, Event, State, UserId};
use guichet_store::testing::{backends, fresh_store};
use guichet_store::{CheckpointKey, NewEvents, NewUser, Options, Queue, QueueOrder, Store, StoreError};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

/// Runs `f` once per backend on a fresh, migrated store.
fn on_each<F, Fut>(f: F)
where
    F: Fn(Store, Options) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for b in backends() {
        rt().block_on(async {
            let (store, opts) = fresh_store(b).await.expect("fresh store");
            f(store.clone(), opts).await;
            store.close().await;
        });
    }
}

/// Creates a dossier for `applicant` with some answers; returns its id.
async fn new_dossier(store: &Store, applicant: &str, answers: serde_json::Value, at: i64) -> (String, Dossier) {
    let id = guichet_store::new_id("d_").expect("id");
    let mut events = Dossier::create("shq-pret-loyer-2020", UserId(applicant.into()), at).expect("create");
    let d = Dossier::replay(&events).expect("replay");
    events.extend(d.handle(Command::Answer { answers }, &UserId(applicant.into()), at).expect("answer"));
    let after = Dossier::replay(&events).expect("replay");
    let v = store
        .append(NewEvents {
            dossier: id.clone(),
            expected_version: 0,
            program_version: Some("v1".into()),
            events,
            actor: Some(applicant.into()),
            after: after.clone(),
            flags: vec![],
            keys: vec![],
            at,
            payment_line: None,
        })
        .await
        .expect("append");
    assert_eq!(v, 2);
    (id, after)
}

async fn run(store: &Store, id: &str, who: &str, cmd: Command, at: i64) -> Result<i64, StoreError> {
    let row = store.dossier(id).await?.ok_or(StoreError::NotFound)?;
    let events = row.dossier.handle(cmd, &UserId(who.into()), at).expect("command");
    let mut all: Vec<Event> = Vec::new();
    for e in store.events(&format!("dossier:{id}")).await? {
        all.push(serde_json::from_value(e.event).expect("event"));
    }
    all.extend(events.clone());
    let after = Dossier::replay(&all).expect("replay");
    store
        .append(NewEvents {
            dossier: id.into(),
            expected_version: row.version,
            program_version: None,
            events,
            actor: Some(who.into()),
            after,
            flags: row.flags.clone(),
            keys: vec![],
            at,
            payment_line: None,
        })
        .await
}

#[test]
fn dossiers_round_trip_with_their_chained_events() {
    on_each(|store, _| async move {
        let (id, after) = new_dossier(&store, "u_alice", serde_json::json!({"home": "1 rue A"}), 100).await;
        let row = store.dossier(&id).await.expect("read").expect("exists");
        assert_eq!(row.state, State::Draft);
        assert_eq!(row.version, 2);
        assert_eq!(row.dossier, after);
        assert_eq!(row.dossier.answers["home"], "1 rue A");
        assert_eq!(run(&store, &id, "u_alice", Command::Submit, 200).await.expect("submit"), 3);
        let row = store.dossier(&id).await.expect("read").expect("exists");
        assert_eq!((row.state, row.submitted_at), (State::Submitted, Some(200)));
        let events = store.events(&format!("dossier:{id}")).await.expect("events");
        assert_eq!(events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(), ["created", "answered", "submitted"]);
        assert_eq!(events.iter().map(|e| e.index).collect::<Vec<_>>(), [0, 1, 2]);
        assert!(events.windows(2).all(|w| w[0].link != w[1].link && w[0].seq < w[1].seq));
        assert!(store.dossier("d_nope").await.expect("read").is_none());
        assert_eq!(store.count_dossiers().await.expect("count"), 1);
    });
}

#[test]
fn a_stale_version_is_a_conflict_and_writes_nothing() {
    on_each(|store, _| async move {
        let (id, _) = new_dossier(&store, "u_alice", serde_json::json!({}), 1).await;
        let row = store.dossier(&id).await.expect("read").expect("exists");
        let stale = |version: i64| NewEvents {
            dossier: id.clone(),
            expected_version: version,
            program_version: None,
            events: vec![Event::Submitted { at: 5 }],
            actor: None,
            after: Dossier { state: State::Submitted, submitted_at: Some(5), ..row.dossier.clone() },
            flags: vec![],
            keys: vec![],
            at: 5,
            payment_line: None,
        };
        assert!(matches!(store.append(stale(1)).await, Err(StoreError::Conflict { current: 2 })));
        assert_eq!(store.events(&format!("dossier:{id}")).await.expect("events").len(), 2);
        assert_eq!(store.dossier(&id).await.expect("read").expect("exists").state, State::Draft);
        // Creating the same id twice is refused too.
        let mut again = stale(0);
        again.program_version = Some("v1".into());
        assert!(matches!(store.append(again).await, Err(StoreError::Conflict { .. })));
        let mut missing = stale(3);
        missing.dossier = "d_missing".into();
        assert!(matches!(store.append(missing).await, Err(StoreError::NotFound)));
        // Many concurrent writers on one version: exactly one wins.
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                tokio::spawn({
                    let store = store.clone();
                    let n = stale(2);
                    async move { store.append(n).await }
                })
            })
            .collect();
        let mut won = 0;
        for t in tasks {
            match t.await.expect("join") {
                Ok(3) => won += 1,
                Err(StoreError::Conflict { current: 3 }) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(won, 1);
        assert_eq!(store.events(&format!("dossier:{id}")).await.expect("events").len(), 3);
    });
}

#[test]
fn concurrent_writers_share_commits_and_all_land() {
    on_each(|store, _| async move {
        let tasks: Vec<_> = (0..300)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(
                    async move { new_dossier(&store, &format!("u_{i}"), serde_json::json!({"n": i}), i).await.0 },
                )
            })
            .collect();
        let mut ids = Vec::new();
        for t in tasks {
            ids.push(t.await.expect("join"));
        }
        assert_eq!(store.count_dossiers().await.expect("count"), 300);
        for (i, id) in ids.iter().enumerate().step_by(37) {
            assert_eq!(store.dossier(id).await.expect("read").expect("exists").dossier.answers["n"], i);
        }
    });
}

#[test]
fn queues_filter_sort_and_paginate() {
    on_each(|store, _| async move {
        let mut ids = Vec::new();
        for i in 0..25 {
            let (id, _) =
                new_dossier(&store, if i % 2 == 0 { "u_even" } else { "u_odd" }, serde_json::json!({}), i).await;
            if i % 5 != 0 {
                run(&store, &id, "u_x", Command::Submit, 1000 - i).await.expect("submit");
            }
            ids.push(id);
        }
        // Submitted, oldest submission first, 7 per page.
        let mut q = Queue { states: vec![State::Submitted], limit: 7, ..Default::default() };
        let mut seen = Vec::new();
        loop {
            let (page, next) = store.queue(&q).await.expect("queue");
            assert!(page.len() <= 7);
            seen.extend(page.into_iter().map(|s| s.submitted_at.expect("submitted")));
            match next {
                Some(c) => q.after = Some(c),
                None => break,
            }
        }
        assert_eq!(seen.len(), 20);
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
        // A citizen's own, newest first, drafts included.
        let mine = Queue {
            applicant: Some("u_even".into()),
            order: QueueOrder::NewestCreated,
            limit: 100,
            ..Default::default()
        };
        let (page, next) = store.queue(&mine).await.expect("queue");
        assert_eq!(page.len(), 13);
        assert!(next.is_none());
        assert!(page.windows(2).all(|w| w[0].created_at >= w[1].created_at));
        assert!(page.iter().all(|s| s.applicant == "u_even"));
        let drafts =
            Queue { states: vec![State::Draft], order: QueueOrder::NewestCreated, limit: 100, ..Default::default() };
        assert_eq!(store.queue(&drafts).await.expect("queue").0.len(), 5);
        let other = Queue { program: Some("other".into()), limit: 10, ..Default::default() };
        assert!(store.queue(&other).await.expect("queue").0.is_empty());
        let stats = store.program_stats("shq-pret-loyer-2020").await.expect("stats");
        assert_eq!(stats.by_state.iter().map(|x| x.1).sum::<i64>(), 25);
        assert_eq!(stats.per_day.iter().map(|x| x.1).sum::<i64>(), 20, "submitted ones, by day");
        assert_eq!((stats.decided, stats.median_seconds), (0, None));
        for id in &ids[1..3] {
            let decision = approved(100, "u_w", 0);
            run(&store, id, "u_w", Command::Decide { decision, agreement_required: false }, 2000)
                .await
                .expect("decide");
        }
        // Submitted at 999 and 998, decided at 2000: 1001 and 1002 s.
        let stats = store.program_stats("shq-pret-loyer-2020").await.expect("stats");
        assert_eq!((stats.decided, stats.median_seconds), (2, Some(1002)));
        assert_eq!(stats.decided_per_day, vec![(0, 2, 0)], "two approvals on day 0");
        assert_eq!(stats.days_to_decision, vec![(0, 2)]);
        let bad = Queue { after: Some("garbage".into()), limit: 10, ..Default::default() };
        assert!(matches!(store.queue(&bad).await, Err(StoreError::Config(_))));
    });
}

#[test]
fn duplicates_are_found_by_keyed_digest_among_open_dossiers() {
    on_each(|store, opts| async move {
        let url = opts.url.clone();
        let mut ids = Vec::new();
        for i in 0..3 {
            let (id, d) = new_dossier(&store, &format!("u_{i}"), serde_json::json!({}), i).await;
            let events = d.handle(Command::Submit, &UserId(format!("u_{i}")), 10).expect("submit");
            let mut after = d.clone();
            after.state = State::Submitted;
            after.submitted_at = Some(10);
            store
                .append(NewEvents {
                    dossier: id.clone(),
                    expected_version: 2,
                    program_version: None,
                    events,
                    actor: None,
                    after,
                    flags: vec![],
                    keys: vec![("bank".into(), if i < 2 { "815-30001-1234567".into() } else { "other".into() })],
                    at: 10,
                    payment_line: None,
                })
                .await
                .expect("submit");
            ids.push(id);
        }
        assert_eq!(
            store.duplicates("shq-pret-loyer-2020", "bank", "815-30001-1234567", &ids[0]).await.expect("dups"),
            vec![ids[1].clone()]
        );
        assert!(
            store.duplicates("shq-pret-loyer-2020", "bank", "815-30001-1234567", "d_x").await.expect("dups").len() == 2
        );
        assert!(store.duplicates("other-program", "bank", "815-30001-1234567", "d_x").await.expect("dups").is_empty());
        assert!(
            store.duplicates("shq-pret-loyer-2020", "sin", "815-30001-1234567", "d_x").await.expect("dups").is_empty()
        );
        // The clear value is nowhere in the database file.
        if let Some(path) = url.strip_prefix("sqlite://") {
            store.close().await;
            let mut bytes = std::fs::read(path).expect("db");
            bytes.extend(std::fs::read(format!("{path}-wal")).unwrap_or_default());
            assert!(!bytes.windows(7).any(|w| w == b"1234567"));
            assert!(bytes.windows(4).any(|w| w == b"bank"), "the file was read");
        }
    });
}

#[test]
fn accounts_sessions_and_tokens() {
    on_each(|store, _| async move {
        let new = |email: &str| NewUser {
            email: email.into(),
            name: "Alice Tremblay".into(),
            password_hash: "$argon2id$fake".into(),
            roles: vec!["citizen".into()],
            language: "fr".into(),
            verified: false,
        };
        let u = store.create_user(new("Alice@Example.org"), None, 1).await.expect("create");
        assert_eq!(u.email, "alice@example.org");
        assert!(u.active && !u.verified);
        assert!(matches!(store.create_user(new("ALICE@example.org "), None, 2).await, Err(StoreError::Taken(_))));
        assert_eq!(store.user_by_email("alice@EXAMPLE.org").await.expect("get").expect("found").id, u.id);
        store.create_session("tok-1", &u.id, "csrf", 10, 100).await.expect("session");
        assert_eq!(store.session("tok-1", 50).await.expect("s").expect("live").csrf, "csrf");
        assert!(store.session("tok-1", 100).await.expect("s").is_none(), "expired");
        assert!(store.session("tok-2", 50).await.expect("s").is_none());
        store
            .update_user(
                &u.id,
                Some(&["case_worker".into(), "reviewer".into()]),
                None,
                Some(true),
                None,
                Some(Some(b"secret")),
                Some("u_admin"),
                20,
            )
            .await
            .expect("update");
        let u2 = store.user(&u.id).await.expect("get").expect("found");
        assert_eq!(u2.roles, ["case_worker", "reviewer"]);
        assert!(u2.verified);
        assert_eq!(u2.totp_secret.as_deref(), Some(&b"secret"[..]));
        assert_eq!(u2.password_hash, "$argon2id$fake");
        // A new password ends the sessions.
        store.update_user(&u.id, None, None, None, Some("$argon2id$new"), None, Some(&u.id), 30).await.expect("update");
        assert!(store.session("tok-1", 50).await.expect("s").is_none());
        assert!(matches!(
            store.update_user("u_nobody", None, Some(false), None, None, None, None, 1).await,
            Err(StoreError::NotFound)
        ));
        let log = store.events(&format!("user:{}", u.id)).await.expect("events");
        assert_eq!(log.len(), 3);
        assert!(!log.iter().any(|e| e.event.to_string().contains("argon2")), "no hash in the log");
        // One-time tokens work once, only for their purpose, only in time.
        store.create_one_time("ot", &u.id, "verify", 100).await.expect("ot");
        assert!(store.consume_one_time("ot", "reset", 10).await.expect("c").is_none());
        assert_eq!(store.consume_one_time("ot", "verify", 10).await.expect("c").as_deref(), Some(u.id.as_str()));
        assert!(store.consume_one_time("ot", "verify", 10).await.expect("c").is_none());
        store.create_one_time("late", &u.id, "verify", 100).await.expect("ot");
        assert!(store.consume_one_time("late", "verify", 100).await.expect("c").is_none());
        store.create_api_token("api", &u.id, "script", 1, 1000).await.expect("api");
        assert_eq!(store.api_token("api", 999).await.expect("t").expect("live").user_id, u.id);
        assert!(store.api_token("api", 1000).await.expect("t").is_none());
        // Throttling counts within a window and restarts after it.
        for n in 1..=3 {
            assert_eq!(store.note_login_failure("alice", 100 + n, 60).await.expect("note"), n);
        }
        assert_eq!(store.login_failures("alice", 110, 60).await.expect("n"), 3);
        assert_eq!(store.login_failures("alice", 200, 60).await.expect("n"), 0);
        assert_eq!(store.note_login_failure("alice", 200, 60).await.expect("note"), 1);
        store.clear_login_failures("alice").await.expect("clear");
        assert_eq!(store.login_failures("alice", 201, 60).await.expect("n"), 0);
        assert_eq!(store.users().await.expect("users").len(), 1);
    });
}

#[test]
fn programs_blobs_and_mail() {
    on_each(|store, _| async move {
        store.publish_program("p", "v1", "source 1", "u_m", 1).await.expect("publish");
        store.publish_program("p", "v2", "source 2", "u_m", 2).await.expect("publish");
        store.publish_program("p", "v2", "source 2", "u_m", 3).await.expect("idempotent");
        assert_eq!(store.current_programs().await.expect("list"), vec![("p".into(), "v2".into(), "source 2".into())]);
        assert_eq!(store.current_program_versions().await.expect("list"), vec![("p".into(), "v2".into())]);
        assert_eq!(store.program_source("p", "v1").await.expect("src").as_deref(), Some("source 1"));
        let versions = store.program_versions("p").await.expect("versions");
        assert_eq!(versions.iter().map(|v| v.0.as_str()).collect::<Vec<_>>(), ["v2", "v1"]);
        let log =
            store.audit_log(Some("program:"), Some("u_m"), Some("program_published"), None, 10).await.expect("log");
        assert_eq!(log.len(), 3, "{log:?}");
        assert!(log.windows(2).all(|w| w[0].seq > w[1].seq), "newest first");
        let older = store.audit_log(Some("program:"), None, None, Some(log[0].seq), 10).await.expect("log");
        assert_eq!(older.len(), 2);
        assert!(store.audit_log(Some("user:"), None, None, None, 10).await.expect("log").is_empty());
        let meta = store.put_blob(b"%PDF-1.7 hello".to_vec(), "application/pdf", 1).await.expect("put");
        assert_eq!(meta.size, 14);
        let again = store.put_blob(b"%PDF-1.7 hello".to_vec(), "application/pdf", 2).await.expect("put");
        assert_eq!(again.sha256, meta.sha256);
        let (m, bytes) = store.blob(&meta.sha256).await.expect("get");
        assert_eq!((m.media_type.as_str(), bytes.as_slice()), ("application/pdf", &b"%PDF-1.7 hello"[..]));
        assert!(matches!(store.blob(&"0".repeat(64)).await, Err(StoreError::NotFound)));
        assert!(matches!(store.blob("../../etc/passwd").await, Err(StoreError::NotFound)));
        assert!(store.settings().await.expect("settings").is_empty());
        store
            .set_settings(
                &[("name".into(), serde_json::json!("SHQ")), ("languages".into(), serde_json::json!(["fr"]))],
                "u_a",
                9,
            )
            .await
            .expect("set");
        store
            .set_settings(&[("name".into(), serde_json::json!("Société d'habitation"))], "u_a", 10)
            .await
            .expect("set");
        let settings = store.settings().await.expect("settings");
        assert_eq!(
            (settings["name"].as_str(), settings["languages"][0].as_str()),
            (Some("Société d'habitation"), Some("fr"))
        );
        assert_eq!(store.events("organization:settings").await.expect("events").len(), 2);
        assert_eq!(store.migrate().await.expect("again"), Vec::<i64>::new(), "migrations run once");
        store.queue_mail("a@example.org", "Bienvenue", "lien: https://x/verify?t=123", 5).await.expect("mail");
        let mails = store.mails_to("a@example.org", 10).await.expect("mails");
        assert_eq!(mails[0].1, "lien: https://x/verify?t=123");
    });
}

#[test]
fn checkpoints_sign_the_log_and_verification_finds_the_first_break() {
    on_each(|store, opts| async move {
        let url = opts.url.clone();
        let key = CheckpointKey::from_pkcs8(&CheckpointKey::generate_pkcs8().expect("gen")).expect("key");
        let (a, _) = new_dossier(&store, "u_a", serde_json::json!({"x": 1}), 1).await;
        let (b, _) = new_dossier(&store, "u_b", serde_json::json!({"x": 2}), 2).await;
        run(&store, &b, "u_b", Command::Submit, 3).await.expect("submit");
        let cp = store.checkpoint(&key, 10).await.expect("checkpoint").expect("some");
        assert_eq!((cp.first_seq, cp.events), (1, 5));
        assert!(store.checkpoint(&key, 11).await.expect("checkpoint").is_none(), "nothing new");
        run(&store, &a, "u_a", Command::Submit, 12).await.expect("submit");
        let r = store.verify_audit(Some(&key.public_key())).await.expect("verify");
        assert_eq!(r.first_broken, None, "{r:?}");
        assert_eq!((r.events, r.dossiers, r.checkpoints, r.unchecked_events), (6, 2, 1, 1));
        let other = CheckpointKey::from_pkcs8(&CheckpointKey::generate_pkcs8().expect("gen")).expect("key");
        let r = store.verify_audit(Some(&other.public_key())).await.expect("verify");
        assert!(r.first_broken.expect("broken").contains("not the organization's"));

        // Tamper: swap event 1 of dossier b for event 1 of dossier a (both
        // validly sealed, but for another row).
        store.close().await;
        use sqlx::Connection;
        if url.starts_with("sqlite") {
            let mut c = sqlx::SqliteConnection::connect(&url).await.expect("connect");
            sqlx::query("UPDATE events SET body = body || x'00' WHERE aggregate = $1 AND idx = 1")
                .bind(format!("dossier:{b}"))
                .execute(&mut c)
                .await
                .expect("tamper");
        } else {
            let mut c = sqlx::PgConnection::connect(&url).await.expect("connect");
            sqlx::query("UPDATE events SET body = body || '\\x00'::bytea WHERE aggregate = $1 AND idx = 1")
                .bind(format!("dossier:{b}"))
                .execute(&mut c)
                .await
                .expect("tamper");
        }
        let store = Store::open(opts).await.expect("reopen");
        let r = store.verify_audit(Some(&key.public_key())).await.expect("verify");
        let broken = r.first_broken.expect("broken");
        assert!(broken.starts_with(&format!("dossier:{b} event 1")), "{broken}");
        store.close().await;
    });
}

/// Blobs in an S3-compatible store, when `GUICHET_TEST_S3` names one (an
/// endpoint with a bucket `guichet-test`; CI runs moto's S3 server).
#[test]
fn blobs_on_an_s3_compatible_store() {
    let Ok(endpoint) = std::env::var("GUICHET_TEST_S3") else { return };
    rt().block_on(async {
        let (_, mut opts) = fresh_store("sqlite").await.expect("store");
        opts.blob_store = Some(format!("s3://guichet-test/{}", guichet_store::new_id("run-").expect("id")));
        opts.blob_store_options = [
            ("endpoint", endpoint.as_str()),
            ("region", "us-east-1"),
            ("access_key_id", "guichet"),
            ("secret_access_key", "guichet"),
            ("aws_allow_http", "true"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let store = Store::open(opts.clone()).await.expect("open");
        let bytes = b"%PDF-1.7 on S3".to_vec();
        let meta = store.put_blob(bytes.clone(), "application/pdf", 1).await.expect("put");
        assert_eq!(store.put_blob(bytes.clone(), "application/pdf", 2).await.expect("again").sha256, meta.sha256);
        let (m, got) = store.blob(&meta.sha256).await.expect("get");
        assert_eq!((m.size, got), (14, bytes));
        assert!(!opts.blob_dir.join(&meta.sha256[..2]).exists(), "nothing on local disk");
        // A row whose bytes are missing from the bucket is a clean NotFound.
        let other = Store::open(Options { blob_store: Some("s3://guichet-test/elsewhere".into()), ..opts.clone() })
            .await
            .expect("open");
        assert!(matches!(other.blob(&meta.sha256).await, Err(StoreError::NotFound)));
        assert!(matches!(store.blob("../x").await, Err(StoreError::NotFound)));
        let bad = Options { blob_store: Some("s3:/nope".into()), ..opts.clone() };
        assert!(matches!(Store::open(bad).await, Err(StoreError::Config(_))));
        let unknown = Options { blob_store_options: vec![("colour".into(), "blue".into())], ..opts };
        assert!(matches!(Store::open(unknown).await, Err(StoreError::Config(_))));
    });
}

/// A finance officer's write of `events` to a dossier at `version`.
fn by_finance(dossier: &str, version: i64, events: Vec<Event>, after: Dossier, at: i64) -> NewEvents {
    NewEvents {
        dossier: dossier.into(),
        expected_version: version,
        program_version: None,
        events,
        actor: Some("u_finance".into()),
        after,
        flags: vec![],
        keys: vec![],
        at,
        payment_line: None,
    }
}

/// An approval of `cents`, by `by` at `at`.
fn approved(cents: i64, by: &str, at: i64) -> guichet_core::Decision {
    guichet_core::Decision {
        outcome: guichet_core::Outcome::Approved,
        amount: Some(cents),
        computed_amount: Some(cents),
        reasons: vec![],
        justification: String::new(),
        program_version: "v1".into(),
        evaluation: serde_json::json!({}),
        by: UserId(by.into()),
        at,
    }
}

/// A credit payment of `cents` to `name` for `dossier`.
fn payment(reference: &str, dossier: &str, cents: i64, name: &str) -> guichet_store::NewPayment {
    guichet_store::NewPayment {
        reference: reference.into(),
        dossier: dossier.into(),
        amount: cents,
        currency: "CAD".into(),
        details: guichet_store::PayeeDetails {
            name: name.into(),
            institution: "006".into(),
            transit: "10000".into(),
            account: "1234567".into(),
            remittance: dossier.into(),
            notify: None,
        },
        version: None,
    }
}

/// A credit batch built by u_finance at time 4, with no files.
async fn credit_batch(
    store: &Store,
    id: &str,
    payments: Vec<guichet_store::NewPayment>,
) -> Result<guichet_store::BatchRow, StoreError> {
    let batch = guichet_store::NewBatch {
        id: id.into(),
        direction: "credit".into(),
        currency: "CAD".into(),
        created_local: "2020-07-15T10:00:00".into(),
        execution_date: "2020-07-16".into(),
        created_by: "u_finance".into(),
        at: 4,
        file_number: store.next_file_number().await?,
        payments,
        files: vec![],
    };
    store.create_batch(batch).await
}

/// Bulk writes (a payment batch, the bank's returns) append their events
/// without re-sealing each dossier's snapshot; every read replays the
/// events after it, the audit still finds row, snapshot and events equal,
/// and the next ordinary write brings the snapshot up to date.
#[test]
fn bulk_writes_leave_snapshots_behind_and_reads_replay_them() {
    on_each(|store, _| async move {
        let decision = |amount: i64| approved(amount, "u_agent", 3);
        let mut ids = Vec::new();
        // Alice has an account (her contact details come with her dossier
        // in a bulk read); "u_bob" has none.
        let alice = NewUser {
            email: "alice@example.org".into(),
            name: "Alice Tremblay".into(),
            password_hash: "$argon2id$fake".into(),
            roles: vec!["citizen".into()],
            language: "en".into(),
            verified: true,
        };
        let alice = store.create_user(alice, None, 1).await.expect("account").id;
        for (i, who) in [alice.as_str(), "u_bob"].iter().enumerate() {
            let (id, _) = new_dossier(&store, who, serde_json::json!({"home": "1 rue A"}), 1).await;
            run(&store, &id, who, Command::Submit, 2).await.expect("submit");
            let cmd = Command::Decide { decision: decision(100_000 + i as i64), agreement_required: false };
            run(&store, &id, "u_agent", cmd, 3).await.expect("decide");
            ids.push(id);
        }
        // The batch: one payment per dossier, scheduled by the batch's one
        // event at the version read, one transaction.
        let mut payments = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let row = store.dossier(id).await.expect("read").expect("exists");
            let reference = format!("PAY-{i}");
            payments.push(guichet_store::NewPayment {
                version: Some(row.version),
                ..payment(&reference, id, row.amount.expect("amount"), "Alice")
            });
        }
        credit_batch(&store, "B1", payments).await.expect("batch");
        // A reference already used refuses the whole batch, named as such.
        let again = credit_batch(&store, "B2", vec![payment("PAY-1", &ids[1], 1, "Bob")]).await;
        assert!(matches!(again, Err(StoreError::Taken(_))));
        assert!(store.batch("B2").await.expect("read").is_none(), "nothing kept");
        // The bank's return: the first paid (a second bulk write).
        let row = store.dossier(&ids[0]).await.expect("read").expect("exists");
        let events = row
            .dossier
            .handle(Command::MarkPaid { reference: "PAY-0".into() }, &UserId("u_finance".into()), 5)
            .expect("paid");
        let after = row.dossier.after(&events).expect("after");
        let settled = by_finance(&ids[0], row.version, events, after, 5);
        let settlement = guichet_store::Settlement { reference: "PAY-0".into(), state: "paid".into(), reason: None };
        store.settle_payments(&[settlement], vec![settled], "u_finance", 5).await.expect("settle");

        // Read one at a time and in bulk: the events after the snapshot count.
        let paid = store.dossier(&ids[0]).await.expect("read").expect("exists");
        assert_eq!(paid.state, State::Paid);
        assert_eq!(paid.dossier.state, State::Paid);
        assert_eq!(paid.dossier.payment_reference.as_deref(), Some("PAY-0"));
        assert_eq!(paid.version, 6);
        let scheduled = store.dossier(&ids[1]).await.expect("read").expect("exists");
        assert_eq!(scheduled.dossier.state, State::PaymentScheduled);
        assert_eq!(scheduled.dossier.payment_reference.as_deref(), Some("PAY-1"));
        let listed = store.dossiers_in(&[State::Paid, State::PaymentScheduled]).await.expect("list");
        let queued = store.payment_queue(&[State::Paid, State::PaymentScheduled]).await.expect("queue");
        assert_eq!(queued.len(), 2);
        assert_eq!(listed.len(), 2);
        let expected = |applicant: &str| {
            (applicant == alice).then(|| guichet_store::Contact {
                email: "alice@example.org".into(),
                name: "Alice Tremblay".into(),
                language: "en".into(),
            })
        };
        for q in &queued {
            // The applicant's contact details come with the row, opened
            // (none for an applicant without an account).
            assert_eq!(q.contact, expected(&q.applicant), "{}", q.applicant);
        }
        for r in &listed {
            let one = store.dossier(&r.id).await.expect("read").expect("exists");
            assert_eq!(r.dossier, one.dossier);
            assert_eq!(
                (&r.program, &r.applicant, r.state, r.amount, r.submitted_at, &r.decided_by),
                (&one.program, &one.applicant, one.state, one.amount, one.submitted_at, &one.decided_by)
            );
        }
        let report = store.verify_audit(None).await.expect("verify");
        assert_eq!(report.first_broken, None);
        assert_eq!(report.dossiers, 2);

        // An ordinary write on top of a snapshot left behind.
        let v =
            run(&store, &ids[1], "u_finance", Command::MarkPaid { reference: "PAY-1".into() }, 6).await.expect("paid");
        assert_eq!(v, 6);
        let row = store.dossier(&ids[1]).await.expect("read").expect("exists");
        assert_eq!(row.dossier.state, State::Paid);
        let report = store.verify_audit(None).await.expect("verify");
        assert_eq!(report.first_broken, None);
    });
}

/// A batch schedules its dossiers' payments by its one event: each dossier
/// moves to `payment_scheduled` at the version the batch read, its history
/// shows the batch's event there, and the audit replays it. A dossier
/// changed since it was read refuses the whole batch, nothing kept; a
/// dossier put back in the queue by hand (to be paid twice) breaks the
/// audit.
#[test]
fn a_batch_schedules_its_dossiers_by_one_event() {
    on_each(|store, opts| async move {
        let url = opts.url.clone();
        let mut ids = Vec::new();
        for i in 0..3 {
            let (id, _) = new_dossier(&store, "u_a", serde_json::json!({"n": i}), 1).await;
            run(&store, &id, "u_a", Command::Submit, 2).await.expect("submit");
            let cmd = Command::Decide { decision: approved(1_000 + i, "u_agent", 3), agreement_required: false };
            run(&store, &id, "u_agent", cmd, 3).await.expect("decide");
            ids.push(id);
        }
        let batch_of = |rows: &std::collections::HashMap<String, guichet_store::DossierRow>| {
            ids.iter()
                .enumerate()
                .map(|(i, id)| guichet_store::NewPayment {
                    version: Some(rows[id].version),
                    ..payment(&format!("PAY-{i}"), id, 1_000 + i as i64, "Alice")
                })
                .collect::<Vec<_>>()
        };
        let read = store.dossiers(&ids).await.expect("read");
        // The third changes after the read: a new account proposed.
        let details =
            guichet_core::BankDetails { institution: "006".into(), transit: "10000".into(), account: "7654321".into() };
        run(&store, &ids[2], "u_agent", Command::ProposeBankChange { details }, 4).await.expect("propose");
        let stale = credit_batch(&store, "B0", batch_of(&read)).await;
        assert!(matches!(stale, Err(StoreError::Conflict { .. })), "{stale:?}");
        assert!(store.batch("B0").await.expect("read").is_none(), "nothing kept");
        assert!(store.batch_payments("B0").await.expect("read").is_empty(), "no payment kept");
        let now = store.dossiers(&ids).await.expect("read");
        assert_eq!((now[&ids[0]].state, now[&ids[0]].version), (State::Approved, read[&ids[0]].version));

        let batch = credit_batch(&store, "B1", batch_of(&now)).await.expect("batch");
        assert_eq!((batch.count, batch.total), (3, 3_003));
        for (i, id) in ids.iter().enumerate() {
            let before = now[id].version;
            let row = store.dossier(id).await.expect("read").expect("exists");
            assert_eq!((row.state, row.version), (State::PaymentScheduled, before + 1), "dossier {i}");
            assert_eq!(row.dossier.payment_reference, Some(format!("PAY-{i}")));
            let history = store.events(&format!("dossier:{id}")).await.expect("history");
            assert_eq!(history.len() as i64, before + 1, "its own events and the batch's");
            let last = history.last().expect("an event");
            assert_eq!(
                (last.index, last.kind.as_str(), last.chain.as_deref()),
                (before, "payment_scheduled", Some("batch:B1"))
            );
            assert_eq!(last.event["reference"], format!("PAY-{i}"));
        }
        // The batch's one event names every dossier and its version.
        let own = store.events("batch:B1").await.expect("batch events");
        assert_eq!(own.len(), 1);
        assert_eq!(own[0].event["scheduled"].as_array().map(Vec::len), Some(3));
        let report = store.verify_audit(None).await.expect("verify");
        assert_eq!(report.first_broken, None);
        // The next write of a scheduled dossier follows the batch's event.
        let v = run(&store, &ids[0], "u_finance", Command::MarkPaid { reference: "PAY-0".into() }, 5).await;
        assert_eq!(v.expect("paid"), now[&ids[0]].version + 2);
        assert_eq!(store.verify_audit(None).await.expect("verify").first_broken, None);

        // By hand, the second dossier back in the queue, as if never paid.
        store.close().await;
        use sqlx::Connection;
        let tamper = "UPDATE dossiers SET state = 'approved', version = version - 1 WHERE id = $1";
        if url.starts_with("sqlite") {
            let mut c = sqlx::SqliteConnection::connect(&url).await.expect("connect");
            sqlx::query(tamper).bind(&ids[1]).execute(&mut c).await.expect("tamper");
        } else {
            let mut c = sqlx::PgConnection::connect(&url).await.expect("connect");
            sqlx::query(tamper).bind(&ids[1]).execute(&mut c).await.expect("tamper");
        }
        let store = Store::open(opts).await.expect("reopen");
        let broken = store.verify_audit(None).await.expect("verify").first_broken.expect("broken");
        assert!(broken.starts_with(&format!("dossier:{}", ids[1])), "{broken}");
        store.close().await;
    });
}

/// A dossier's payment line is read back, opened, while the dossier stays
/// at the version it was written with; after a write that keeps none, the
/// queue has no line for it (the service then opens the dossier).
#[test]
fn a_payment_line_holds_for_its_version_only() {
    on_each(|store, _| async move {
        let (id, _) = new_dossier(&store, "u_a", serde_json::json!({"n": 1}), 1).await;
        run(&store, &id, "u_a", Command::Submit, 2).await.expect("submit");
        let row = store.dossier(&id).await.expect("read").expect("exists");
        let cmd = Command::Decide { decision: approved(1_000, "u_agent", 3), agreement_required: false };
        let events = row.dossier.handle(cmd, &UserId("u_agent".into()), 3).expect("decide");
        let after = row.dossier.after(&events).expect("after");
        let line = br#"{"amount":1000,"payee":"Alice"}"#.to_vec();
        let write = NewEvents { payment_line: Some(line.clone()), ..by_finance(&id, row.version, events, after, 3) };
        let v = store.append(write).await.expect("decide");
        let queue = store.payment_queue(&[State::Approved]).await.expect("queue");
        assert_eq!(queue.len(), 1);
        assert_eq!((queue[0].id.as_str(), queue[0].version, queue[0].state), (id.as_str(), v, State::Approved));
        assert_eq!(queue[0].line.as_deref(), Some(line.as_slice()), "opened as written");
        assert_eq!(queue[0].contact, None, "u_a has no account");
        // Another write, without a line: the old one no longer holds.
        let details =
            guichet_core::BankDetails { institution: "006".into(), transit: "10000".into(), account: "7654321".into() };
        run(&store, &id, "u_agent", Command::ProposeBankChange { details }, 4).await.expect("propose");
        let queue = store.payment_queue(&[State::Approved]).await.expect("queue");
        assert_eq!((queue[0].version, queue[0].line.as_deref()), (v + 1, None));
        assert!(store.payment_queue(&[State::Paid]).await.expect("queue").is_empty());
    });
}

/// Bulk writes past their statements' sizes (300 dossiers per update, 400
/// events, 1,000 payments per statement and payees per sealed slice,
/// catch-ups 200 at a time): 1,050 payments scheduled, some paid one by one (their snapshots current
/// again), then the bank's answer for all of them in one settlement, read
/// back in bulk with snapshots left behind at different versions.
#[test]
fn bulk_writes_cross_their_statement_sizes() {
    on_each(|store, _| async move {
        const N: usize = 1050;
        let finance = UserId("u_finance".into());
        let mut ids = Vec::new();
        for i in 0..N {
            let (id, _) = new_dossier(&store, "u_a", serde_json::json!({"n": i}), 1).await;
            run(&store, &id, "u_a", Command::Submit, 2).await.expect("submit");
            let cmd = Command::Decide { decision: approved(1_000 + i as i64, "u_agent", 3), agreement_required: false };
            run(&store, &id, "u_agent", cmd, 3).await.expect("decide");
            ids.push(id);
        }
        let rows = store.dossiers(&ids).await.expect("read");
        assert_eq!(rows.len(), N);
        let mut payments = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let row = &rows[id];
            let reference = format!("PAY-{i:04}");
            payments.push(guichet_store::NewPayment {
                version: Some(row.version),
                ..payment(&reference, id, row.amount.expect("amount"), &format!("Ménage {i}"))
            });
        }
        assert_eq!(credit_batch(&store, "B1", payments).await.expect("batch").count, N as i64);
        // The payees, sealed in slices of 1,000 (here two), in file order.
        let payees = store.batch_payees("B1").await.expect("payees");
        let listed = store.batch_payments("B1").await.expect("payments");
        assert_eq!(payees.len(), N);
        for (i, (p, d)) in listed.iter().zip(&payees).enumerate() {
            assert_eq!(
                (p.reference.as_str(), d.name.as_str()),
                (format!("PAY-{i:04}").as_str(), format!("Ménage {i}").as_str())
            );
        }
        // Every third paid one by one: an ordinary write, snapshot current.
        for (i, id) in ids.iter().enumerate().filter(|(i, _)| i % 3 == 0) {
            let cmd = Command::MarkPaid { reference: format!("PAY-{i:04}") };
            run(&store, id, "u_finance", cmd, 5).await.expect("paid");
        }
        // The bank's answer for all: those paid come back (returned), the
        // others are paid; one settlement.
        let rows = store.dossiers(&ids).await.expect("read");
        let (mut settlements, mut dossiers) = (Vec::new(), Vec::new());
        for (i, id) in ids.iter().enumerate() {
            let row = &rows[id];
            let reference = format!("PAY-{i:04}");
            let (cmd, state, reason) = if i % 3 == 0 {
                let reason = format!("905 compte fermé {i}");
                let cmd = Command::ReturnPayment { reference: reference.clone(), reason: reason.clone() };
                (cmd, "returned", Some(reason))
            } else {
                (Command::MarkPaid { reference: reference.clone() }, "paid", None)
            };
            let events = row.dossier.handle(cmd, &finance, 6).expect("settle");
            let after = row.dossier.after(&events).expect("after");
            dossiers.push(by_finance(id, row.version, events, after, 6));
            settlements.push(guichet_store::Settlement { reference, state: state.into(), reason });
        }
        store.settle_payments(&settlements, dossiers, "u_finance", 6).await.expect("settle");

        let rows = store.dossiers(&ids).await.expect("read");
        for (i, id) in ids.iter().enumerate() {
            let row = &rows[id];
            let expected = if i % 3 == 0 { (State::PaymentReturned, 7) } else { (State::Paid, 6) };
            assert_eq!((row.dossier.state, row.version), expected, "dossier {i}");
            assert_eq!(store.dossier(id).await.expect("read").expect("exists").dossier, row.dossier, "dossier {i}");
        }
        let refs: Vec<String> = (0..N).map(|i| format!("PAY-{i:04}")).collect();
        let statuses = store.payment_statuses(&refs).await.expect("statuses");
        assert_eq!(statuses.len(), N);
        let paid = store.payments_by_reference(&refs).await.expect("payments");
        for p in &paid {
            let i: usize = p.reference[4..].parse().expect("number");
            let expected =
                if i % 3 == 0 { ("returned", Some(format!("905 compte fermé {i}"))) } else { ("paid", None) };
            assert_eq!((p.state.as_str(), p.reason.clone()), expected, "{}", p.reference);
        }
        let report = store.verify_audit(None).await.expect("verify");
        assert_eq!(report.first_broken, None);
        assert_eq!(report.dossiers, N);
    });
}
