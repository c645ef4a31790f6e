//! The `guichet serve` process, for real: killed with SIGKILL in the
//! middle of a submission load (every acknowledged submission must survive
//! and the audit trail must verify), and two processes on one database
//! (sessions and dossiers are in the database, so either serves any
//! request). On SQLite, and on PostgreSQL when `GUICHET_TEST_POSTGRES` is set.

use serde_json::{Value, json};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_guichet");
const PASSWORD: &str = "correct horse battery staple";

fn programs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../programs");
    vec![root.join("shq-pret-loyer-2020.toml"), root.join("shq-menages-en-attente-2020.toml")]
}

/// A settings file on a fresh database of `backend`.
fn setup(backend: &str) -> (PathBuf, PathBuf) {
    let dir = guichet_store::testing::scratch_dir("serve").expect("dir");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    let url = rt.block_on(guichet_store::testing::fresh_database_url(backend, &dir)).expect("db");
    std::fs::write(dir.join("checkpoint.p8"), guichet_store::CheckpointKey::generate_pkcs8().expect("key"))
        .expect("write");
    let conf = dir.join("guichet.toml");
    std::fs::write(
        &conf,
        format!(
            "database = \"{url}\"\nblob_dir = \"{}\"\ndata_key = \"{}\"\ncheckpoint_key_file = \"{}\"\nreference_date = \"2020-05-10\"\n",
            dir.join("blobs").display(),
            guichet_store::DataKey::generate().expect("key").to_hex(),
            dir.join("checkpoint.p8").display()
        ),
    )
    .expect("settings");
    let out =
        Command::new(BIN).args(["admin", "publish", "--config"]).arg(&conf).args(programs()).output().expect("run");
    assert!(out.status.success(), "publish: {}", String::from_utf8_lossy(&out.stderr));
    (dir, conf)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port")
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .max_idle_connections(0)
        .build()
        .into()
}

fn serve(conf: &Path, port: u16) -> Child {
    let log = std::fs::File::create(conf.with_file_name(format!("serve-{port}.log"))).expect("log");
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(conf)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("GUICHET_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn");
    let a = agent();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if a.get(&format!("http://127.0.0.1:{port}/readyz")).call().is_ok_and(|r| r.status() == 200) {
            return child;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the server did not start; see {}", conf.with_file_name(format!("serve-{port}.log")).display());
}

/// (status, body) of a JSON request with the session.
fn call(
    a: &ureq::Agent,
    method: &str,
    url: &str,
    session: &(String, String),
    body: Option<Value>,
) -> Result<(u16, Value), ureq::Error> {
    let mut req = ureq::http::Request::builder()
        .method(method)
        .uri(url)
        .header("cookie", &session.0)
        .header("x-csrf-token", &session.1)
        .header("content-type", "application/json");
    if method == "GET" {
        req = req.header("accept", "application/json");
    }
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let mut resp = a.run(req.body(payload).map_err(|e| ureq::Error::BadUri(e.to_string()))?)?;
    let status = resp.status().as_u16();
    let mut text = String::new();
    let _ = resp.body_mut().as_reader().read_to_string(&mut text);
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

/// Registers and signs in a citizen: (cookie, csrf).
fn citizen(port: u16, email: &str) -> (String, String) {
    let a = agent();
    let base = format!("http://127.0.0.1:{port}/api/v1");
    let none = (String::new(), String::new());
    let (st, b) = call(
        &a,
        "POST",
        &format!("{base}/auth/register"),
        &none,
        Some(json!({"email": email, "password": PASSWORD, "name": "Test"})),
    )
    .expect("register");
    assert_eq!(st, 201, "{b}");
    let resp = a
        .post(&format!("{base}/auth/login"))
        .header("content-type", "application/json")
        .send(json!({"email": email, "password": PASSWORD}).to_string())
        .expect("login");
    let cookie = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("cookie")
        .to_owned();
    let mut text = String::new();
    let _ = resp.into_body().as_reader().read_to_string(&mut text);
    let body: Value = serde_json::from_str(&text).expect("json");
    (cookie, body["csrf_token"].as_str().expect("csrf").to_owned())
}

fn answers(n: usize) -> Value {
    json!({
        "income_support": "cerb",
        "home": {"line1": format!("{n}, rue Saint-Denis"), "city": "Montréal", "province": "QC", "postal_code": "H2J 2L4"},
        "housing_type": "ordinary", "lease_start": "2019-07-01", "lease_end": "2020-06-30", "lease_copy": "bail.pdf",
        "told_landlord": true, "monthly_rent": "800.00 $", "months_covered": "both", "portion": "all",
        "landlord_name": "Gestion Tremblay", "landlord_email": "loyers@tremblay.example",
        "landlord_address": {"line1": "4500, boulevard Saint-Laurent", "city": "Montréal", "province": "QC", "postal_code": "H2T 1R2"},
        "landlord_bank": {"institution": "815", "transit": "12345", "account": "1234567"}
    })
}

/// Every dossier of the session's citizen, through the paginated list.
fn all_ids(port: u16, session: &(String, String)) -> std::collections::HashSet<String> {
    let a = agent();
    let mut ids = std::collections::HashSet::new();
    let mut after: Option<String> = None;
    loop {
        let url = match &after {
            Some(c) => format!("http://127.0.0.1:{port}/api/v1/dossiers?limit=500&after={c}"),
            None => format!("http://127.0.0.1:{port}/api/v1/dossiers?limit=500"),
        };
        let (st, page) = call(&a, "GET", &url, session, None).expect("list");
        assert_eq!(st, 200, "{page}");
        for item in page["items"].as_array().expect("items") {
            assert_eq!(item["state"], "submitted");
            ids.insert(item["id"].as_str().expect("id").to_owned());
        }
        match page["next"].as_str() {
            Some(c) => after = Some(c.to_owned()),
            None => return ids,
        }
    }
}

fn audit_verify(conf: &Path) -> String {
    let out = Command::new(BIN).args(["audit", "verify", "--config"]).arg(conf).output().expect("run");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "audit verify failed:\n{text}{}", String::from_utf8_lossy(&out.stderr));
    text
}

fn stop(mut child: Child) {
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if let Ok(Some(status)) = child.try_wait() {
            assert!(status.success(), "graceful shutdown ended with {status}");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("the server did not stop within 20 s of SIGTERM");
}

#[test]
fn killing_the_server_mid_load_loses_no_acknowledged_submission() {
    for backend in guichet_store::testing::backends() {
        let (_dir, conf) = setup(backend);
        let port = free_port();
        let mut server = serve(&conf, port);
        let session = citizen(port, "crash@example.org");
        let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
        let errors = Arc::new(Mutex::new(0usize));
        let done = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..6)
            .map(|w| {
                let (ack, errors, done, session) = (acknowledged.clone(), errors.clone(), done.clone(), session.clone());
                std::thread::spawn(move || {
                    let a = agent();
                    let url = format!("http://127.0.0.1:{port}/api/v1/dossiers");
                    let mut n = 0;
                    while !done.load(Ordering::Relaxed) {
                        n += 1;
                        let body = json!({"program": "shq-pret-loyer-2020", "answers": answers(w * 1_000_000 + n), "submit": true});
                        match call(&a, "POST", &url, &session, Some(body)) {
                            Ok((201, d)) => ack.lock().expect("lock").push(d["id"].as_str().expect("id").to_owned()),
                            Ok((st, d)) => panic!("a submission was refused: {st} {d}"),
                            Err(_) => {
                                *errors.lock().expect("lock") += 1;
                                std::thread::sleep(Duration::from_millis(20));
                            }
                        }
                    }
                })
            })
            .collect();
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(1200));
            let before = acknowledged.lock().expect("lock").len();
            server.kill().expect("SIGKILL");
            let _ = server.wait();
            assert!(before > 0, "no submission went through before the kill");
            server = serve(&conf, port);
        }
        std::thread::sleep(Duration::from_millis(800));
        done.store(true, Ordering::Relaxed);
        for w in workers {
            w.join().expect("worker");
        }
        let ack = acknowledged.lock().expect("lock").clone();
        let stored = all_ids(port, &session);
        let lost: Vec<&String> = ack.iter().filter(|id| !stored.contains(*id)).collect();
        assert!(lost.is_empty(), "{backend}: {} acknowledged submissions lost: {lost:?}", lost.len());
        assert!(*errors.lock().expect("lock") > 0, "the kills were not felt by the clients");
        stop(server);
        let report = audit_verify(&conf);
        assert!(report.contains("audit: intact"), "{report}");
        eprintln!(
            "{backend}: {} acknowledged, {} stored, 3 kills; {}",
            ack.len(),
            stored.len(),
            report.lines().next().unwrap_or("")
        );
    }
}

#[test]
fn two_servers_on_one_database_serve_the_same_sessions_and_dossiers() {
    for backend in guichet_store::testing::backends() {
        let (_dir, conf) = setup(backend);
        let (p1, p2) = (free_port(), free_port());
        let (s1, s2) = (serve(&conf, p1), serve(&conf, p2));
        // Signed in on the first, working on the second.
        let session = citizen(p1, "both@example.org");
        let a = agent();
        let (st, d) = call(
            &a,
            "POST",
            &format!("http://127.0.0.1:{p2}/api/v1/dossiers"),
            &session,
            Some(json!({"program": "shq-pret-loyer-2020", "answers": answers(1)})),
        )
        .expect("create");
        assert_eq!(st, 201, "{d}");
        let id = d["id"].as_str().expect("id").to_owned();
        let (st, d) = call(
            &a,
            "POST",
            &format!("http://127.0.0.1:{p1}/api/v1/dossiers/{id}/submit"),
            &session,
            Some(json!({"version": 2})),
        )
        .expect("submit");
        assert_eq!((st, d["state"].as_str()), (200, Some("submitted")), "{d}");
        // A stale write on the other server is a conflict, not a lost update.
        let (st, d) = call(
            &a,
            "POST",
            &format!("http://127.0.0.1:{p2}/api/v1/dossiers/{id}/withdraw"),
            &session,
            Some(json!({"version": 2, "reason": "x"})),
        )
        .expect("withdraw");
        assert_eq!((st, d["error"]["code"].as_str()), (409, Some("version_conflict")), "{d}");
        let (st, d) =
            call(&a, "GET", &format!("http://127.0.0.1:{p2}/api/v1/dossiers/{id}"), &session, None).expect("get");
        assert_eq!((st, d["version"].as_i64()), (200, Some(3)), "{d}");
        // Logging out on one ends the session on both.
        let (st, _) = call(&a, "POST", &format!("http://127.0.0.1:{p2}/api/v1/auth/logout"), &session, Some(json!({})))
            .expect("logout");
        assert_eq!(st, 200);
        let (st, _) =
            call(&a, "GET", &format!("http://127.0.0.1:{p1}/api/v1/dossiers/{id}"), &session, None).expect("get");
        assert_eq!(st, 401);
        stop(s1);
        stop(s2);
        assert!(audit_verify(&conf).contains("audit: intact"));
    }
}

#[test]
fn the_demo_starts_ready_and_restarts_without_duplicating_anything() {
    let dir = guichet_store::testing::scratch_dir("demo").expect("dir");
    let port = free_port();
    let start = |port: u16| {
        let mut child = Command::new(BIN)
            .args(["demo", "--port", &port.to_string(), "--dir"])
            .arg(&dir)
            .env("GUICHET_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let a = agent();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(60) {
            if a.get(&format!("http://127.0.0.1:{port}/readyz")).call().is_ok_and(|r| r.status() == 200) {
                return child;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("the demo did not start");
    };
    for round in 0..2 {
        let child = start(port);
        let a = agent();
        let resp = a
            .post(&format!("http://127.0.0.1:{port}/api/v1/auth/login"))
            .header("content-type", "application/json")
            .send(json!({"email": "agent@demo.guichet", "password": "demo-guichet-2020"}).to_string())
            .expect("login");
        assert_eq!(resp.status(), 200, "round {round}");
        let cookie = resp
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .expect("cookie")
            .to_owned();
        let (st, page) =
            call(&a, "GET", &format!("http://127.0.0.1:{port}/api/v1/dossiers"), &(cookie, String::new()), None)
                .expect("queue");
        assert_eq!(st, 200);
        let mut states: Vec<&str> = page["items"]
            .as_array()
            .map(|a| a.iter().filter_map(|d| d["state"].as_str()).collect())
            .unwrap_or_default();
        states.sort_unstable();
        assert_eq!(
            states,
            ["agreement_pending", "agreement_signed", "submitted"],
            "one approved (its agreement out for signature), one signed (ready to pay) and one submitted, round {round}: {page}"
        );
        let (st, programs) =
            call(&a, "GET", &format!("http://127.0.0.1:{port}/api/v1/programs"), &(String::new(), String::new()), None)
                .expect("programs");
        assert_eq!((st, programs.as_array().map(Vec::len)), (200, Some(2)));
        // The banner names the URL and every demo account.
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        let out = child.wait_with_output().expect("wait");
        let banner = String::from_utf8_lossy(&out.stdout);
        assert!(banner.contains(&format!("http://127.0.0.1:{port}/")), "{banner}");
        for who in
            ["admin@", "agent@", "revision@", "finances@", "finances2@", "programmes@", "citoyen@", "signataire@"]
        {
            assert!(banner.contains(who), "{who} missing from {banner}");
        }
    }
    // The finance commands, on the demo's ready loan: one officer builds
    // the batch, another approves it, the files are written, the bank's
    // returns applied; the loan is then owed.
    let guichet = |args: &[&str]| {
        let out = Command::new(BIN).args(args).arg("--dir").arg(&dir).output().expect("run");
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
    };
    let (code, out) = guichet(&["payments", "ready", "--as", "finances@demo.guichet"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("1 ready") && out.contains("Gestion immobilière Tremblay inc."), "{out}");
    let (code, out) = guichet(&["payments", "ready", "--as", "agent@demo.guichet"]);
    assert_eq!(code, Some(2), "a case worker is not a finance officer: {out}");
    let (code, out) =
        guichet(&["payments", "batch", "create", "--as", "finances@demo.guichet", "--execution-date", "2099-01-15"]);
    assert_eq!(code, Some(0), "{out}");
    let id = out.split_whitespace().nth(1).expect("batch id").to_owned();
    assert!(id.starts_with("LOT-") && out.contains("1 payments"), "{out}");
    let (code, out) = guichet(&["payments", "batch", "approve", &id, "--as", "finances@demo.guichet"]);
    assert_eq!(code, Some(2), "the builder cannot approve: {out}");
    assert!(out.contains("second finance officer"), "{out}");
    let (code, out) = guichet(&["payments", "batch", "approve", &id, "--as", "finances2@demo.guichet"]);
    assert_eq!(code, Some(0), "{out}");
    let xml = dir.join("lot.xml");
    let (code, out) = guichet(&[
        "payments",
        "batch",
        "export",
        &id,
        "--format",
        "pain001",
        "--out",
        &xml.display().to_string(),
        "--as",
        "finances@demo.guichet",
    ]);
    assert_eq!(code, Some(0), "{out}");
    let text = std::fs::read_to_string(&xml).expect("pain.001");
    assert!(text.contains("<NbOfTxs>1</NbOfTxs>") && text.contains("<CtrlSum>1500.00</CtrlSum>"), "{text}");
    if let Some(xsd) = std::env::var_os("GUICHET_PAIN001_XSD") {
        let out = Command::new("xmllint").arg("--noout").arg("--schema").arg(&xsd).arg(&xml).output().expect("xmllint");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let aft = dir.join("lot.005");
    let (code, out) = guichet(&[
        "payments",
        "batch",
        "export",
        &id,
        "--format",
        "cpa005",
        "--out",
        &aft.display().to_string(),
        "--as",
        "finances@demo.guichet",
    ]);
    assert_eq!(code, Some(0), "{out}");
    let records = std::fs::read(&aft).expect("005");
    assert_eq!(records.len(), 3 * 1466, "A, C and Z records of 1464 bytes and CR LF");
    assert!(!dir.join("lot.partial").exists());
    let (code, out) = guichet(&[
        "payments",
        "batch",
        "export",
        &id,
        "--format",
        "mt940",
        "--out",
        "x",
        "--as",
        "finances@demo.guichet",
    ]);
    assert_eq!(code, Some(2), "{out}");
    let reference = text.split("<EndToEndId>").nth(1).and_then(|t| t.split('<').next()).expect("reference").to_owned();
    let returns = dir.join("retours.csv");
    std::fs::write(
        &returns,
        "reference,status,reason
P123,paid,
",
    )
    .expect("write");
    let (code, out) =
        guichet(&["payments", "import-returns", &returns.display().to_string(), "--as", "finances@demo.guichet"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("line 2") && out.contains("no such payment"), "{out}");
    std::fs::write(
        &returns,
        format!(
            "reference,status,reason
{reference},paid,
"
        ),
    )
    .expect("write");
    let (code, out) =
        guichet(&["payments", "import-returns", &returns.display().to_string(), "--as", "finances@demo.guichet"]);
    assert_eq!((code, out.trim()), (Some(0), "1 paid, 0 returned, 0 repayments recorded"));
    let (code, out) = guichet(&["loans", "due", "--as", "finances@demo.guichet"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("Jean Locataire") && out.contains("due 2021-08-01") && out.contains("1 loans"), "{out}");
    let (code, out) = guichet(&["payments", "batch", "list", "--as", "finances2@demo.guichet"]);
    assert!(code == Some(0) && out.contains(&id) && out.contains("exported"), "{out}");

    let out = Command::new(BIN).args(["audit", "verify", "--dir"]).arg(&dir).output().expect("audit");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}
