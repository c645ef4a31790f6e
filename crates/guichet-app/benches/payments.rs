//! A payment batch of N approved grants (100,000 by default), in the
//! service's use cases on SQLite: the ready queue read and the batch built
//! (one event per dossier, one row per payment, both bank files written and
//! sealed, one transaction), approved by a second officer, both files
//! handed out, then the "payment sent" notices queued (after the response,
//! as the service does). Then M queued emails (10,000 by
//! default) delivered to a loopback SMTP server (Python's, discarding).
//!
//! cargo bench -p guichet-app --bench payments [-- N [M]]
//! bench/payments_compare.sh runs it beside the peers.

use guichet_app::{App, Config, PayFormat};
use guichet_core::{Command, Decision, Dossier, Outcome, UserId};
use guichet_store::NewEvents;
use std::time::Instant;

// The allocator the `guichet` binary runs with.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const GRANT: &str = include_str!("../../../programs/shq-menages-en-attente-2020.toml");
const PASSWORD: &str = "correct horse battery staple";

fn main() {
    let numbers: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let n = numbers.first().copied().unwrap_or(100_000);
    let mails = numbers.get(1).copied().unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        let (store, _) = guichet_store::testing::fresh_store("sqlite").await.expect("store");
        let config = Config {
            reference_date: Some("2020-07-15".into()),
            originator: Some(guichet_pay::Originator {
                name: "Société d'habitation du Québec".into(),
                short_name: "SHQ".into(),
                id: "SHQ0000001".into(),
                data_centre: "00310".into(),
                account: guichet_core::BankAccount::parse("815", "30001", "7654321").expect("account"),
                credit_code: "450".into(),
                debit_code: "430".into(),
            }),
            ..Config::default()
        };
        let app = App::new(store.clone(), config, None);
        let program = app.publish_program(None, GRANT).await.expect("program");
        for (email, role) in [("f1@example.org", "finance_officer"), ("f2@example.org", "finance_officer")] {
            app.create_account(None, email, "Bench Finance", PASSWORD, &[role.into()]).await.expect("account");
        }
        let caller = async |email: &str| {
            let l = app.login(email, PASSWORD, None).await.expect("login");
            app.caller_from_session(&l.token).await.expect("session").expect("caller")
        };
        let (f1, f2) = (caller("f1@example.org").await, caller("f2@example.org").await);

        // N approved grants from distinct households, written directly as
        // events (the setup, not measured).
        let t = Instant::now();
        let mut applicants = Vec::with_capacity(n);
        for i in 0..n {
            let u = store
                .create_user(
                    guichet_store::NewUser {
                        email: format!("h{i}@example.org"),
                        name: format!("Ménage {i}"),
                        password_hash: "x".into(),
                        roles: vec!["citizen".into()],
                        language: if i % 5 == 0 { "en" } else { "fr" }.into(),
                        verified: true,
                    },
                    None,
                    1,
                )
                .await
                .expect("user");
            applicants.push(u.id);
        }
        // Dossiers written 256 at a time, so the store's group commit
        // takes them together (one at a time, 100,000 took minutes).
        for start in (0..n).step_by(256) {
            let mut tasks = Vec::new();
            for (i, applicant) in applicants.iter().enumerate().skip(start).take(256) {
                let who = UserId(applicant.clone());
                let mut events = Dossier::create(&program.id, who.clone(), 1).expect("create");
                let d = Dossier::replay(&events).expect("replay");
                let answers = serde_json::json!({"applicant_bank": {
                    "institution": "006", "transit": format!("{:05}", 10000 + i % 90000), "account": format!("{:07}", 1_000_000 + i)
                }});
                events.extend(d.handle(Command::Answer { answers }, &who, 2).expect("answer"));
                let d = Dossier::replay(&events).expect("replay");
                events.extend(d.handle(Command::Submit, &who, 3).expect("submit"));
                let d = Dossier::replay(&events).expect("replay");
                let amount = 100_000 + (i as i64 % 400_000);
                let decision = Decision {
                    outcome: Outcome::Approved,
                    amount: Some(amount),
                    computed_amount: Some(amount),
                    reasons: vec![],
                    justification: String::new(),
                    program_version: program.version.clone(),
                    evaluation: serde_json::json!({"status": "eligible"}),
                    by: UserId("u_agent".into()),
                    at: 4,
                };
                events.extend(
                    d.handle(Command::Decide { decision, agreement_required: false }, &UserId("u_agent".into()), 4)
                        .expect("decide"),
                );
                let after = Dossier::replay(&events).expect("replay");
                // The line the service writes with a decision.
                let payment_line =
                    app.payment_line_json(&program.id, &program.version, &after).await.expect("payment line");
                let write = NewEvents {
                    dossier: format!("d_{i:032x}"),
                    expected_version: 0,
                    program_version: Some(program.version.clone()),
                    events,
                    actor: Some(applicant.clone()),
                    after,
                    flags: vec![],
                    keys: vec![],
                    at: 4,
                    payment_line,
                };
                let store = store.clone();
                tasks.push(tokio::spawn(async move { store.append(write).await.expect("append") }));
            }
            for t in tasks {
                t.await.expect("task");
            }
        }
        eprintln!("setup: {n} approved grants in {:.1} s", t.elapsed().as_secs_f64());

        let t0 = Instant::now();
        let ready = app.payments_ready(&f1).await.expect("ready");
        let t1 = Instant::now();
        assert_eq!(ready.iter().filter(|r| r.blocked.is_none()).count(), n);
        drop(ready);
        let batch = app.create_batch(&f1, None, Some("2099-01-15")).await.expect("batch");
        let t2 = Instant::now();
        assert_eq!(batch.count as usize, n);
        app.approve_batch(&f2, &batch.id).await.expect("approve");
        let t3 = Instant::now();
        let (xml, _, _) = app.export_batch(&f1, &batch.id, PayFormat::Pain001).await.expect("pain.001");
        let t4 = Instant::now();
        let (aft, _, _) = app.export_batch(&f1, &batch.id, PayFormat::Cpa005).await.expect("005");
        let t5 = Instant::now();
        assert_eq!(app.notify_exported_batches().await.expect("notices"), 1);
        let t6 = Instant::now();
        let s = |a: Instant, b: Instant| (b - a).as_secs_f64();
        println!("payments ready queue, as listed ({n})   {:>8.3} s", s(t0, t1));
        println!("batch built: queue read, its event, {n} payments and dossiers, both files written and sealed");
        println!("                                       {:>8.3} s", s(t1, t2));
        println!("approved (second officer)              {:>8.3} s", s(t2, t3));
        println!("pain.001 handed out                    {:>8.3} s  ({} MB)", s(t3, t4), xml.len() / 1_000_000);
        println!("Standard 005 handed out                {:>8.3} s  ({} MB)", s(t4, t5), aft.len() / 1_000_000);
        println!("TOTAL batch built + approved + both files {:>5.3} s", s(t1, t5));
        println!("then {n} 'payment sent' notices queued  {:>8.3} s  (after the response)", s(t5, t6));
        // As the store keeps them (zlib, fastest level), for the floor.
        let packed = |b: &[u8]| {
            use std::io::Write;
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            z.write_all(b).expect("deflate");
            z.finish().expect("deflate").len() as f64 / 1e6
        };
        println!("files as kept: {:.1} + {:.1} MB compressed", packed(&xml), packed(&aft));
        // The bank's answer: every payment paid but one in a hundred, returned.
        let mut csv = String::from("reference,status,reason\n");
        for (i, p) in app.store.batch_payments(&batch.id).await.expect("payments").iter().enumerate() {
            if i % 100 == 0 {
                csv.push_str(&format!("{},returned,905 account closed\n", p.reference));
            } else {
                csv.push_str(&format!("{},paid,\n", p.reference));
            }
        }
        let t8 = Instant::now();
        let report = app.import_returns(&f1, csv.as_bytes()).await.expect("returns");
        println!(
            "returns imported: {} paid, {} returned    {:>8.3} s",
            report.paid,
            report.returned,
            t8.elapsed().as_secs_f64()
        );
        assert_eq!(report.paid + report.returned, n);
        let b = guichet_pay::Batch {
            id: batch.id.clone(),
            created: jiff::civil::date(2099, 1, 1).at(0, 0, 0, 0),
            execution: jiff::civil::date(2099, 1, 15),
            file_number: 1,
            direction: guichet_pay::Direction::Credit,
            payments: (0..n)
                .map(|i| guichet_pay::Payment {
                    reference: format!("P{i:018}"),
                    name: format!("Ménage {i}"),
                    account: guichet_core::BankAccount::parse("006", "12345", &format!("{:07}", 1_000_000 + i))
                        .expect("account"),
                    amount: 100_000,
                    currency: "CAD".into(),
                    remittance: "shq".into(),
                })
                .collect(),
        };
        let org = app.config.originator.clone().expect("originator");
        let t7 = Instant::now();
        let x = guichet_pay::pain001::write(&b, &org).expect("xml");
        let a = guichet_pay::cpa005::write(&b, &org).expect("005");
        println!("guichet-pay alone: both files          {:>8.3} s  ({} + {} bytes)", t7.elapsed().as_secs_f64(), x.len(), a.len());

        // Mail: M queued messages to a loopback SMTP server (a fresh
        // database: the notices above are not part of it).
        if mails > 0 {
            let (store, _) = guichet_store::testing::fresh_store("sqlite").await.expect("store");
            deliver(&App::new(store, Config::default(), None), mails).await;
        }
    });
}

async fn deliver(app: &App, m: usize) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port");
    let sink = "import smtpd, asyncore, sys\n\
class Sink(smtpd.SMTPServer):\n    n = 0\n    def process_message(self, *a, **k):\n        Sink.n += 1\n\
Sink(('127.0.0.1', int(sys.argv[1])), None)\nasyncore.loop()\n";
    let mut server = std::process::Command::new("python3")
        .args(["-W", "ignore", "-c", sink, &port.to_string()])
        .spawn()
        .expect("python3 smtpd");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let now = app.now();
    for i in 0..m {
        app.store
            .queue_mail_once(
                &format!("bench:{i}"),
                None,
                &format!("p{i}@example.org"),
                "Paiement envoyé",
                "Bonjour,\n\nUn paiement de 1 500,00 $ a été transmis.\n",
                now,
            )
            .await
            .expect("queue");
    }
    let mailer = guichet_app::Mailer::new(&guichet_app::SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        starttls: false,
        username: None,
        password: None,
        from: "guichet <no-reply@example.org>".into(),
    })
    .expect("mailer");
    // Everything queued (this database holds only the M messages).
    let t = Instant::now();
    let mut sent = 0;
    loop {
        let (s, f) = app.deliver_mails(&mailer).await.expect("deliver");
        assert_eq!(f, 0, "no failure on loopback");
        if s == 0 {
            break;
        }
        sent += s;
    }
    let secs = t.elapsed().as_secs_f64();
    println!("mail: {sent} messages to loopback SMTP  {secs:>8.3} s  ({:.0}/s)", sent as f64 / secs);
    let _ = server.kill();
    let _ = server.wait();
}
