//! A real server on a real socket, on a fresh database, for each backend
//! (`GUICHET_TEST_POSTGRES` adds PostgreSQL), and a small HTTP client that
//! keeps its session cookie and CSRF token.

#![allow(dead_code)]

use guichet_app::{App, Config};
use guichet_store::testing::fresh_store;
use serde_json::{Value, json};
use std::io::Read;

pub const PASSWORD: &str = "correct horse battery staple";

pub const LOAN: &str = include_str!("../../../../programs/shq-pret-loyer-2020.toml");
pub const WAITING: &str = include_str!("../../../../programs/shq-menages-en-attente-2020.toml");

pub struct Server {
    pub base: String,
    pub app: App,
    pub rt: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<std::sync::mpsc::Receiver<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(d) = self.done.take() {
            let _ = d.recv_timeout(std::time::Duration::from_secs(10));
        }
    }
}

/// A server with both SHQ programs published, evaluating as of 2020-05-10.
pub fn start(backend: &str) -> Server {
    start_with(backend, Config { reference_date: Some("2020-05-10".into()), ..Config::default() })
}

pub fn start_with(backend: &str, config: Config) -> Server {
    start_custom(backend, config, |app| app)
}

/// A server whose application is adjusted first (a timestamp authority).
pub fn start_custom(backend: &str, config: Config, adjust: impl FnOnce(App) -> App) -> Server {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let (app, listener) = rt.block_on(async {
        let (store, _) = fresh_store(backend).await.expect("store");
        let key =
            guichet_store::CheckpointKey::from_pkcs8(&guichet_store::CheckpointKey::generate_pkcs8().expect("gen"))
                .expect("key");
        let app = adjust(App::new(store, config, Some(key)));
        app.publish_program(None, LOAN).await.expect("publish loan");
        app.publish_program(None, WAITING).await.expect("publish waiting");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        (app, listener)
    });
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (done_tx, done) = std::sync::mpsc::channel();
    let served = app.clone();
    rt.spawn(async move {
        let _ = guichet_web::serve(listener, served, async {
            let _ = stopped.await;
        })
        .await;
        let _ = done_tx.send(());
    });
    Server { base, app, rt, stop: Some(stop), done: Some(done) }
}

impl Server {
    pub fn client(&self) -> Client {
        Client::new(&self.base)
    }

    /// An account with `roles`, signed in.
    pub fn user(&self, email: &str, roles: &[&str]) -> Client {
        let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        self.rt.block_on(self.app.create_account(None, email, "Test Person", PASSWORD, &roles)).expect("account");
        let mut c = self.client();
        c.login(email, PASSWORD);
        c
    }

    /// The last email sent to `to`.
    pub fn last_mail(&self, to: &str) -> String {
        let mails = self.rt.block_on(self.app.mails_to(to)).expect("mails");
        mails.first().map(|m| m.1.clone()).unwrap_or_default()
    }

    /// The latest mail to `to` whose subject or body holds `needle`,
    /// waiting up to ten seconds for it (some notices are queued after the
    /// response that causes them); empty if none came.
    #[allow(dead_code)]
    pub fn wait_mail(&self, to: &str, needle: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let mails = self.rt.block_on(self.app.mails_to(to)).expect("mails");
            if let Some(m) = mails.iter().find(|m| m.0.contains(needle) || m.1.contains(needle)) {
                return format!("{}\n{}", m.0, m.1);
            }
            if std::time::Instant::now() > deadline {
                return String::new();
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

pub struct Client {
    agent: ureq::Agent,
    pub base: String,
    pub cookie: Option<String>,
    pub csrf: Option<String>,
    pub bearer: Option<String>,
    pub user_id: Option<String>,
}

impl Client {
    pub fn new(base: &str) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_idle_connections(0)
            .max_idle_connections_per_host(0)
            .max_redirects(0)
            .build()
            .into();
        Client { agent, base: base.into(), cookie: None, csrf: None, bearer: None, user_id: None }
    }

    pub fn login(&mut self, email: &str, password: &str) -> (u16, Value) {
        let (status, body, headers) =
            self.raw("POST", "/api/v1/auth/login", Some(json!({"email": email, "password": password})), None);
        if status == 200 {
            let set = headers.iter().find(|(k, _)| k == "set-cookie").map(|(_, v)| v.clone()).unwrap_or_default();
            self.cookie = set.split(';').next().map(str::to_owned);
            self.csrf = body["csrf_token"].as_str().map(str::to_owned);
            self.user_id = body["user_id"].as_str().map(str::to_owned);
        }
        (status, body)
    }

    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let (s, b, _) = self.raw(method, path, body, None);
        (s, b)
    }

    /// A request with optional JSON body, or raw bytes with a content type.
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        bytes: Option<(&str, Vec<u8>)>,
    ) -> (u16, Value, Vec<(String, String)>) {
        let url = format!("{}{}", self.base, path);
        let mut req = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        if let Some(t) = &self.csrf {
            req = req.header("x-csrf-token", t);
        }
        if let Some(t) = &self.bearer {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let payload: Vec<u8> = match (body, bytes) {
            (Some(v), _) => {
                req = req.header("content-type", "application/json");
                serde_json::to_vec(&v).expect("json")
            }
            (None, Some((ct, b))) => {
                req = req.header("content-type", ct);
                b
            }
            (None, None) => Vec::new(),
        };
        let req = req.body(payload).expect("request");
        let mut resp = self.agent.run(req).expect("transport");
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
            .collect();
        let mut text = String::new();
        let _ = resp.body_mut().as_reader().read_to_string(&mut text);
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value, headers)
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None)
    }

    /// A request whose answer is bytes (a PDF, a CRL), with an optional
    /// raw body.
    pub fn bytes(&self, method: &str, path: &str, body: Option<(&str, Vec<u8>)>) -> (u16, Vec<u8>) {
        let url = format!("{}{}", self.base, path);
        let mut req = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        if let Some(t) = &self.csrf {
            req = req.header("x-csrf-token", t);
        }
        let payload = match body {
            Some((ct, b)) => {
                req = req.header("content-type", ct);
                b
            }
            None => Vec::new(),
        };
        let mut resp = self.agent.run(req.body(payload).expect("request")).expect("transport");
        let status = resp.status().as_u16();
        let bytes = resp.body_mut().with_config().limit(200 * 1024 * 1024).read_to_vec().expect("body");
        (status, bytes)
    }

    pub fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("POST", path, Some(body))
    }
}

/// A multipart/form-data body and its content type: (name, file name
/// for a file part, bytes).
pub fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "guichet-test-boundary-7d1f";
    let mut body = Vec::new();
    for (name, file, bytes) in parts {
        let file = file.map(|f| format!("; filename=\"{f}\"")).unwrap_or_default();
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"{file}\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// The answers of an eligible rent-loan applicant (the program's own test
/// defaults): 800 $ a month, May and June, capped at 1 500 $.
pub fn eligible_loan() -> Value {
    let app: Value =
        serde_json::from_str(include_str!("../../../../examples/pret-loyer-admissible.json")).expect("example");
    app["answers"].clone()
}

/// A service configured with the organization's bank settings (payment
/// files), evaluating as of 2020-05-10.
pub fn payments_config() -> Config {
    Config {
        reference_date: Some("2020-05-10".into()),
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
    }
}

/// Runs `f` on each backend.
pub fn on_each(f: impl Fn(&Server)) {
    for b in guichet_store::testing::backends() {
        let server = start(b);
        f(&server);
    }
}

// ---------------------------------------------------------------- validators

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn validators_required() -> bool {
    std::env::var_os("GUICHET_REQUIRE_VALIDATORS").is_some()
}

pub fn tool(name: &str) -> bool {
    let present =
        Command::new("sh").arg("-c").arg(format!("command -v {name}")).output().is_ok_and(|o| o.status.success());
    assert!(
        present || !validators_required(),
        "{name} is required (GUICHET_REQUIRE_VALIDATORS is set) but not installed"
    );
    present
}

pub fn pyhanko() -> Option<PathBuf> {
    let found = [std::env::var_os("PYHANKO").map(PathBuf::from), Some(PathBuf::from("/var/tmp/pyhanko/bin/pyhanko"))]
        .into_iter()
        .flatten()
        .find(|p| p.exists());
    assert!(found.is_some() || !validators_required(), "pyHanko is required but not installed");
    found
}

pub fn run(cmd: &mut Command) -> (bool, String) {
    let o = cmd.output().expect("runs");
    (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

pub fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("guichet-agreements-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("dir");
    d
}

/// pdfsig and pyHanko, trusting the organization's root only: every
/// signature valid and trusted. `repeated` counts signatures made with a
/// certificate an earlier signature of the file already carried (the
/// organization's seal, twice): poppler 22.12 with NSS answers "Unknown
/// issue with Certificate" for such a repeat — a file pyHanko signs twice
/// with one key gets the same answer — so those may be only valid there;
/// pyHanko must still trust every one.
pub fn external_validators(dir: &Path, root_pem: &str, file: &Path, signatures: usize) {
    external_validators_with(dir, root_pem, file, signatures, 0)
}

pub fn external_validators_with(dir: &Path, root_pem: &str, file: &Path, signatures: usize, repeated: usize) {
    let root = dir.join("root.pem");
    std::fs::write(&root, root_pem).expect("root");
    if tool("pdfsig") && tool("certutil") {
        let db = dir.join("nss");
        std::fs::create_dir_all(&db).expect("nss");
        let sql = format!("sql:{}", db.display());
        assert!(run(Command::new("certutil").args(["-N", "-d", &sql, "--empty-password"])).0);
        assert!(
            run(Command::new("certutil").args(["-A", "-d", &sql, "-n", "root", "-t", "CT,C,C", "-i"]).arg(&root)).0
        );
        let (_, out) = run(Command::new("pdfsig").args(["-nssdir", &sql]).arg(file));
        assert_eq!(out.matches("Signature is Valid.").count(), signatures, "{out}");
        let trusted = out.matches("Certificate is Trusted.").count();
        let repeats = out.matches("Unknown issue with Certificate").count();
        assert!(trusted >= signatures - repeated && trusted + repeats == signatures, "{out}");
    }
    if tool("qpdf") {
        let (ok, out) = run(Command::new("qpdf").arg("--check").arg(file));
        assert!(ok, "{out}");
    }
    if let Some(py) = pyhanko() {
        let (ok, out) = run(Command::new(py)
            .args(["sign", "validate", "--pretty-print", "--trust-replace", "--trust"])
            .arg(&root)
            .arg(file));
        assert!(ok, "{out}");
        assert_eq!(out.matches("judged VALID").count(), signatures, "{out}");
        assert!(!out.contains("INVALID"), "{out}");
    }
}
