//! A two-signer loan agreement, end to end in the service's use cases
//! (SQLite, in-process timestamp authority): generated and sent on
//! approval, signed by the citizen (sealed evidence, B-T), countersigned by
//! a signing officer with a personal certificate (Argon2id passphrase,
//! B-T), then completed (validation data, document timestamp: B-LTA;
//! certificate of completion). Prints medians over the rounds. Then a
//! bulk send of BULK_ROWS envelopes (10,000 by default) from a CSV.
//!
//! cargo bench -p guichet-app --bench envelope [-- ROUNDS [BULK_ROWS]]
//!
//! Also times guichet-pades alone on the signature work, and writes its
//! inputs to $GUICHET_BENCH_DIR (default /var/tmp/guichet-bench/envelope)
//! so that bench/envelope_compare.sh times pyHanko on the same files.

use guichet_app::{App, Config, SigningContext};
use guichet_pades::ca::{self, Employee};
use guichet_pades::{SignOptions, SoftwareKey, TimestampAuthority, TimestampClient, ValidationData};
use std::time::{Duration, Instant};

const LOAN: &str = include_str!("../../../programs/shq-pret-loyer-2020.toml");
const PASSWORD: &str = "correct horse battery staple";
const PASSPHRASE: &str = "une phrase secrète assez longue";

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e3
}

struct Tsa(TimestampAuthority);
impl TimestampClient for Tsa {
    fn exchange(&self, request: &[u8]) -> Result<Vec<u8>, guichet_pades::Error> {
        Ok(self.0.respond(request))
    }
}

fn main() {
    let numbers: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let rounds = numbers.first().copied().unwrap_or(30);
    let bulk_rows = numbers.get(1).copied().unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let agreement = rt.block_on(async {
        let (store, _) = guichet_store::testing::fresh_store("sqlite").await.expect("store");
        let app = App::new(store, Config { reference_date: Some("2020-05-10".into()), ..Config::default() }, None);
        app.publish_program(None, LOAN).await.expect("program");
        for (email, role) in
            [("c@example.org", "citizen"), ("agent@example.org", "case_worker"), ("o@example.org", "signing_officer")]
        {
            app.create_account(None, email, "Bench Person", PASSWORD, &[role.into()]).await.expect("account");
        }
        let caller = |email: &'static str| {
            let app = app.clone();
            async move {
                let l = app.login(email, PASSWORD, None).await.expect("login");
                app.caller_from_session(&l.token).await.expect("session").expect("caller")
            }
        };
        let (citizen, agent, officer) =
            (caller("c@example.org").await, caller("agent@example.org").await, caller("o@example.org").await);
        app.issue_certificate(&officer, PASSPHRASE).await.expect("certificate");
        let example: serde_json::Value =
            serde_json::from_str(include_str!("../../../examples/pret-loyer-admissible.json")).expect("example");
        let ctx = SigningContext { ip: Some("127.0.0.1".into()), user_agent: Some("bench".into()) };
        let (mut send, mut first, mut second, mut total) = (vec![], vec![], vec![], vec![]);
        let mut agreement = Vec::new();
        for round in 0..rounds + 3 {
            let d = app
                .create_dossier(&citizen, "shq-pret-loyer-2020", Some(example["answers"].clone()), true)
                .await
                .expect("dossier");
            let input = guichet_app::DecisionInput {
                outcome: "approved".into(),
                amount: None,
                reasons: vec![],
                justification: String::new(),
            };
            let t0 = Instant::now();
            app.decide(&agent, &d.id, None, input).await.expect("approve");
            let t1 = Instant::now();
            let e = app.dossier_envelopes(&agent, &d.id).await.expect("envelopes").remove(0);
            let t2 = Instant::now();
            app.sign_envelope(&citizen, &e.id, 0, None, &ctx).await.expect("citizen signs");
            let t3 = Instant::now();
            let done = app.sign_envelope(&officer, &e.id, 1, Some(PASSPHRASE), &ctx).await.expect("officer signs");
            let t4 = Instant::now();
            assert_eq!(done.state, "completed");
            if round >= 3 {
                send.push(t1 - t0);
                first.push(t3 - t2);
                second.push(t4 - t3);
                total.push(t4 - t2);
            }
            if agreement.is_empty() {
                agreement = app.envelope_file(&citizen, &e.id, guichet_app::EnvelopeFile::Original).await.expect("pdf");
            }
        }
        println!("rounds={rounds} (SQLite, in-process TSA)");
        println!("guichet approve_and_send_agreement_median_ms={:.2}", median(send));
        println!("guichet citizen_signature_median_ms={:.2}", median(first));
        println!("guichet officer_signature_and_completion_median_ms={:.2}", median(second));
        println!("guichet two_signer_envelope_server_median_ms={:.2}", median(total));

        // Bulk send: one envelope per CSV row (a one-page lease from a
        // template; an external signer, then any signing officer).
        let template = guichet_app::TemplateInput {
            name: "Bail".into(),
            lang: None,
            title: "Bail — place {place}".into(),
            source: "#let d = json(\"data.json\")\n#set page(paper: \"us-letter\", margin: 72pt)\n= Bail de stationnement\nEntre #d.organization et #d.fields.locataire, pour la place #d.fields.place, au loyer mensuel de #d.fields.loyer.\n\nFait le #d.date.\n".into(),
            fields: vec!["locataire".into(), "place".into(), "loyer".into()],
            signers: vec![
                guichet_app::TemplateSigner { label: "Locataire".into(), kind: "external".into(), group: 1, field: None },
                guichet_app::TemplateSigner { label: "Pour la Société".into(), kind: "officer".into(), group: 2, field: None },
            ],
            message: String::new(),
            expires_in_days: None,
        };
        let t = app.create_template(&agent, template).await.expect("template");
        let mut csv = String::from("locataire,place,loyer,signer1_email,signer1_name\n");
        for i in 0..bulk_rows {
            csv.push_str(&format!("Locataire {i},P-{i},95 $,locataire{i}@example.org,Locataire {i}\n"));
        }
        let started = Instant::now();
        let report = app.bulk_send(&agent, &t.id, csv.as_bytes()).await.expect("bulk");
        let took = started.elapsed();
        assert_eq!(report.sent, bulk_rows);
        println!(
            "guichet bulk_send rows={bulk_rows} seconds={:.1} envelopes_per_s={:.0}",
            took.as_secs_f64(),
            bulk_rows as f64 / took.as_secs_f64()
        );
        // The rendering alone, on both cores, for the same rows.
        let engine = guichet_docs::Engine::new();
        let source = format!(
            "#set document(date: datetime(year: 2020, month: 5, day: 1))\n#set text(lang: \"fr\")\n{}",
            t.definition.source
        );
        // Each row's data differs (Typst memoizes identical work).
        let n = 200;
        let started = Instant::now();
        for i in 0..n {
            let one = serde_json::json!({"lang": "fr", "organization": "O", "title": "T", "date": "1er mai 2020",
                "issued": [2020, 5, 1], "fields": {"locataire": format!("Locataire {i}"), "place": format!("R-{i}"),
                "loyer": "95 $"}, "signers": []});
            engine.render(&source, &one).expect("render");
        }
        println!(
            "guichet-docs render_one_page_template_mean_ms={:.2} (one core)",
            started.elapsed().as_secs_f64() * 1e3 / n as f64
        );
        agreement
    });

    // The passphrase's key derivation alone (Argon2id, default parameters).
    let mut argon = vec![];
    for _ in 0..10 {
        let t = Instant::now();
        let mut k = [0u8; 32];
        argon2::Argon2::default()
            .hash_password_into(PASSPHRASE.as_bytes(), b"0123456789abcdef", &mut k)
            .expect("argon2");
        argon.push(t.elapsed());
    }
    println!("guichet argon2id_passphrase_median_ms={:.2}", median(argon));

    // The signature work alone, on files pyHanko gets too: two B-T
    // signatures (ECDSA P-256 signer; RSA-2048 timestamp authority, both
    // in process), validation data, a document timestamp.
    let now = time::OffsetDateTime::now_utc();
    let files = ca::init("Bench", "CA", now).expect("CA");
    let issuing = ca::IssuingCa::load("Bench", "CA", &files.issuing_key).expect("CA");
    let person =
        |n: &str| Employee { name: n.into(), email: "x@example.org".into(), organization: "Bench".into(), unit: None };
    let signer = issuing.issue(&person("Signer"), 1001, now, 365).expect("issue");
    // An RSA timestamp authority: pyHanko's in-process one is RSA only.
    let tsa_cert =
        issuing.issue_tsa_with("Bench", 1002, now, 365, guichet_pades::Algorithm::RsaPkcs1Sha256).expect("tsa");
    let chain = vec![ca::pem_to_der(&files.issuing_cert).expect("pem")];
    let root = ca::pem_to_der(&files.root_cert).expect("pem");
    let key = SoftwareKey::from_pkcs8(signer.key_pem.as_bytes(), false).expect("key");
    let tsa = Tsa(TimestampAuthority::new(
        Box::new(SoftwareKey::from_pkcs8(tsa_cert.key_pem.as_bytes(), false).expect("key")),
        tsa_cert.cert_der.clone(),
        chain.clone(),
        "2.25.137271.3161.1",
        Box::new(time::OffsetDateTime::now_utc),
    )
    .expect("tsa"));
    let root_ca = ca::IssuingCa::load_root("Bench", "CA", &files.root_key).expect("root");
    let crls = vec![issuing.crl(&[], 1, now, 7).expect("crl"), root_ca.crl(&[], 1, now, 30).expect("crl")];
    let mut work = vec![];
    for _ in 0..rounds {
        let t = Instant::now();
        let opts = SignOptions { timestamp: Some(&tsa), ..SignOptions::new(&key, &signer.cert_der, &chain) };
        let once = guichet_pades::sign_pdf(&agreement, &opts).expect("sign");
        let twice = guichet_pades::sign_pdf(&once, &opts).expect("sign");
        let data = ValidationData { certs: vec![chain[0].clone(), root.clone()], crls: crls.clone(), ocsps: vec![] };
        let lt = guichet_pades::add_dss(&twice, &data).expect("dss");
        let lta = guichet_pades::timestamp_pdf(&lt, &tsa).expect("timestamp");
        work.push(t.elapsed());
        assert!(lta.len() > agreement.len());
    }
    println!("guichet-pades two_bt_signatures_dss_doc_timestamp_median_ms={:.2}", median(work));

    let dir = std::env::var("GUICHET_BENCH_DIR").unwrap_or_else(|_| "/var/tmp/guichet-bench/envelope".into());
    if std::fs::create_dir_all(&dir).is_ok() {
        let w = |name: &str, data: &[u8]| std::fs::write(format!("{dir}/{name}"), data).is_ok();
        let ok = w("in.pdf", &agreement)
            && w("key.pem", signer.key_pem.as_bytes())
            && w("cert.pem", signer.cert_pem.as_bytes())
            && w("chain.pem", files.issuing_cert.as_bytes())
            && w("root.pem", files.root_cert.as_bytes())
            && w("tsa.pem", tsa_cert.cert_pem.as_bytes())
            && w("tsa.key", tsa_cert.key_pem.as_bytes())
            && w("issuing.crl", &crls[0])
            && w("root.crl", &crls[1]);
        println!("inputs ({} KB agreement) written to {dir}: {ok}", agreement.len() / 1024);
    }
}
