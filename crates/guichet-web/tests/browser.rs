//! The screens in a real headless Chromium (Debian's `chromium` and
//! `chromium-driver`), driven over the W3C WebDriver protocol, with
//! axe-core (from npm) run on every page visited: zero WCAG 2.1 A/AA
//! violations, and no sideways scrolling at 320 px. Screenshots at 390 and
//! 1280 px go to `target/screenshots/` at the workspace root.
//!
//! Without chromedriver the tests say so and pass, unless
//! `GUICHET_REQUIRE_VALIDATORS` is set (CI sets it): then they fail.

mod common;

use common::*;
use serde_json::{Value, json};
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn required() -> bool {
    std::env::var("GUICHET_REQUIRE_VALIDATORS").is_ok_and(|v| !v.is_empty())
}

fn axe_source() -> Option<String> {
    let path = std::env::var("AXE_CORE_JS").unwrap_or_else(|_| "/var/tmp/axe/node_modules/axe-core/axe.min.js".into());
    std::fs::read_to_string(path).ok()
}

/// `target/screenshots/` at the workspace root (CI keeps it as artifacts).
fn screenshots_dir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// A WebDriver session on a chromedriver of our own.
struct Browser {
    agent: ureq::Agent,
    base: String,
    session: String,
    driver: Child,
    axe: String,
    pub violations: Vec<String>,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.agent.delete(&format!("{}/session/{}", self.base, self.session)).call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn b64decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let (mut out, mut buf, mut bits) = (Vec::new(), 0u32, 0);
    for v in s.bytes().filter_map(val) {
        buf = (buf << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    out
}

impl Browser {
    fn start() -> Option<Browser> {
        let (Some(axe), true) = (axe_source(), std::path::Path::new("/usr/bin/chromedriver").exists()) else {
            assert!(!required(), "chromium-driver and axe-core are required (GUICHET_REQUIRE_VALIDATORS)");
            eprintln!("skipped: no /usr/bin/chromedriver or axe-core");
            return None;
        };
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port");
        let driver = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let base = format!("http://127.0.0.1:{port}");
        let t = Instant::now();
        while agent.get(&format!("{base}/status")).call().is_err() {
            assert!(t.elapsed() < Duration::from_secs(20), "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=320,740", "--lang=fr-CA"]
        }}}});
        let mut resp = agent.post(&format!("{base}/session")).send_json(&caps).expect("session");
        let v: Value = resp.body_mut().read_json().expect("json");
        let session = v["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {v}")).to_owned();
        Some(Browser { agent, base, session, driver, axe, violations: Vec::new() })
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut resp = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, b) => self.agent.post(&url).send_json(b.unwrap_or_else(|| json!({}))),
        }
        .expect("webdriver");
        let mut text = String::new();
        let _ = resp.body_mut().as_reader().read_to_string(&mut text);
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if let Some(e) = v["value"]["error"].as_str() {
            panic!("webdriver {method} {path}: {e}: {}", v["value"]["message"]);
        }
        v["value"].clone()
    }

    fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({"url": url})));
    }

    fn js(&self, script: &str, args: Value) -> Value {
        self.cmd("POST", "/execute/sync", Some(json!({"script": script, "args": args})))
    }

    fn find(&self, css: &str) -> String {
        let v = self.cmd("POST", "/element", Some(json!({"using": "css selector", "value": css})));
        match v[ELEMENT].as_str() {
            Some(e) => e.to_owned(),
            None => panic!("no element {css} ({v}) on {}", self.path()),
        }
    }

    fn click(&self, css: &str) {
        let el = self.find(css);
        self.cmd("POST", &format!("/element/{el}/click"), None);
    }

    /// Clicks something that loads a page, and waits for the new page.
    fn go(&self, css: &str) {
        let marker = self.js("window.__guichet_old = true; return true;", json!([]));
        assert_eq!(marker, true);
        self.click(css);
        self.wait_new_page();
    }

    fn wait_new_page(&self) {
        let t = Instant::now();
        loop {
            let v =
                self.js("return window.__guichet_old === undefined && document.readyState === 'complete';", json!([]));
            if v == true {
                return;
            }
            assert!(t.elapsed() < Duration::from_secs(15), "no new page after the click");
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    /// Signs in as someone else (cookies cleared), landing on `back`.
    fn sign_in(&self, base: &str, email: &str, back: &str) {
        self.cmd("DELETE", "/cookie", None);
        self.goto(&format!("{base}/connexion?retour={back}"));
        self.type_in("#email", email);
        self.type_in("#password", PASSWORD);
        self.go("main form button[type=submit]");
        assert_eq!(self.path(), back, "signed in as {email}");
    }

    fn type_in(&self, css: &str, text: &str) {
        let el = self.find(css);
        self.cmd("POST", &format!("/element/{el}/clear"), None);
        self.cmd("POST", &format!("/element/{el}/value"), Some(json!({"text": text})));
    }

    /// Sets a field's value directly (date inputs, whose typing is locale-bound).
    fn set(&self, id: &str, value: &str) {
        self.js("document.getElementById(arguments[0]).value = arguments[1];", json!([id, value]));
    }

    fn keys(&self, text: &str) {
        let el = self.cmd("GET", "/element/active", None);
        let el = el[ELEMENT].as_str().expect("active element").to_owned();
        self.cmd("POST", &format!("/element/{el}/value"), Some(json!({"text": text})));
    }

    fn active_id(&self) -> String {
        self.js(
            "return document.activeElement && (document.activeElement.id || document.activeElement.tagName);",
            json!([]),
        )
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    fn path(&self) -> String {
        let url = self.cmd("GET", "/url", None);
        let url = url.as_str().unwrap_or_default();
        url.splitn(4, '/').nth(3).map(|p| format!("/{p}")).unwrap_or_default()
    }

    fn text(&self) -> String {
        self.js("return document.body.innerText;", json!([])).as_str().unwrap_or_default().to_owned()
    }

    /// Runs axe-core on the page; records every violation with its selectors.
    /// Also checks the page does not scroll sideways on a phone.
    fn audit(&mut self, what: &str) {
        let overflow =
            self.js("return document.documentElement.scrollWidth - document.documentElement.clientWidth;", json!([]));
        if overflow.as_i64().unwrap_or(0) > 0 {
            self.violations.push(format!("{what}: the page is {overflow} px wider than the 320 px screen"));
        }
        self.js(&self.axe.clone(), json!([]));
        let v = self.cmd(
            "POST",
            "/execute/async",
            Some(json!({"script": "const done = arguments[arguments.length - 1];
                axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})
                  .then(r => done(r.violations.map(v => v.id + ' (' + v.impact + '): ' + v.help + ' — ' + v.nodes.map(n => n.target.join(' ')).join(', '))))
                  .catch(e => done(['axe failed: ' + e]));", "args": []})),
        );
        for line in v.as_array().cloned().unwrap_or_default() {
            self.violations.push(format!("{what}: {}", line.as_str().unwrap_or_default()));
        }
    }

    fn screenshot(&self, name: &str) {
        for (w, h) in [(390, 844), (1280, 900)] {
            self.cmd("POST", "/window/rect", Some(json!({"width": w, "height": h})));
            let png = self.cmd("GET", "/screenshot", None);
            let bytes = b64decode(png.as_str().unwrap_or_default());
            let _ = std::fs::write(screenshots_dir().join(format!("{name}-{w}.png")), bytes);
        }
        self.cmd("POST", "/window/rect", Some(json!({"width": 320, "height": 740})));
    }
}

#[test]
fn a_citizen_applies_on_a_phone_and_every_page_passes_axe() {
    let Some(mut b) = Browser::start() else { return };
    let s = start("sqlite");
    let base = s.base.clone();
    s.rt.block_on(s.app.create_account(None, "marie@example.org", "Marie Tremblay", PASSWORD, &["citizen".into()]))
        .expect("account");

    b.goto(&format!("{base}/"));
    assert!(b.text().contains("Programmes d'aide offerts"), "French by default");
    b.audit("home");
    b.screenshot("home");
    b.goto(&format!("{base}/programmes/shq-pret-loyer-2020"));
    b.audit("program");
    b.go("a.button.primary");
    assert!(b.path().starts_with("/connexion"));
    b.audit("login");
    b.type_in("#email", "marie@example.org");
    b.type_in("#password", PASSWORD);
    b.go("form button[type=submit]");
    assert_eq!(b.path(), "/programmes/shq-pret-loyer-2020", "back where sign-in started");
    b.go("form button.primary");
    assert!(b.path().ends_with("/etapes/1"), "{}", b.path());
    let dossier = b.path().split('/').nth(2).expect("id").to_owned();
    b.audit("step 1");
    assert!(b.text().contains("Étape 1 sur 4"), "{}", b.text());
    b.screenshot("form-step");

    // Step 1 by keyboard alone: tab to the radio group, choose, submit.
    b.js("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);", json!([]));
    let mut tabs = 0;
    while !b.active_id().starts_with("q-income_support") {
        b.keys("\u{E004}");
        tabs += 1;
        assert!(tabs < 30, "the first question cannot be reached by Tab");
    }
    b.keys(" ");
    let checked =
        b.js("return document.querySelector('input[name=\"q.income_support\"]:checked') !== null;", json!([]));
    assert_eq!(checked, true, "Space selects a radio");
    while b.active_id() != "BUTTON" {
        b.keys("\u{E004}");
        tabs += 1;
        assert!(tabs < 60, "the submit button cannot be reached by Tab");
    }
    b.js("window.__guichet_old = true;", json!([]));
    b.keys("\u{E007}");
    b.wait_new_page();
    assert!(b.path().ends_with("/etapes/2"), "Enter submitted the step: {}", b.path());

    // Step 2, with a mistake first: the error is beside its field, values kept.
    b.type_in("#q-home-line1", "4321, rue Saint-Denis, app. 3");
    b.type_in("#q-home-city", "Montréal");
    b.type_in("#q-home-province", "QC");
    b.type_in("#q-home-postal_code", "H2J 2L4");
    b.click("input[name='q.housing_type'][value='ordinary']");
    b.set("q-lease_start", "2019-07-01");
    b.click("input[name='q.told_landlord'][value='true']");
    let pdf = std::env::temp_dir().join(format!("bail-{dossier}.pdf"));
    std::fs::write(&pdf, b"%PDF-1.4\n% lease\n").expect("pdf");
    let file = b.find("#q-lease_copy");
    b.cmd("POST", &format!("/element/{file}/value"), Some(json!({"text": pdf.display().to_string()})));
    b.type_in("#q-home-postal_code", "ZZZ");
    b.go("form button.primary");
    assert!(b.path().ends_with("/etapes/2"));
    let t = b.text();
    assert!(t.contains("Certaines réponses sont à corriger"), "{t}");
    assert!(t.contains("code postal valide"), "{t}");
    let kept = b.js("return document.getElementById('q-home-city').value;", json!([]));
    assert_eq!(kept, "Montréal", "typed values are kept");
    assert!(t.contains("Fichier joint : bail-"), "the good file was kept despite the other error: {t}");
    b.audit("step 2 with an error");
    b.screenshot("form-error");
    b.type_in("#q-home-postal_code", "H2J 2L4");
    b.set("q-lease_start", "2019-07-01");
    b.go("form button.primary");
    assert!(b.path().ends_with("/etapes/3"), "{}", b.path());

    b.type_in("#q-monthly_rent", "800,00");
    b.click("input[name='q.months_covered'][value='both']");
    b.click("input[name='q.portion'][value='all']");
    b.go("form button.primary");
    assert!(b.path().ends_with("/etapes/4"), "{}", b.path());
    b.audit("step 4");
    b.type_in("#q-landlord_name", "Gestion immobilière Tremblay inc.");
    b.type_in("#q-landlord_address-line1", "4500, boulevard Saint-Laurent, bureau 210");
    b.type_in("#q-landlord_address-city", "Montréal");
    b.type_in("#q-landlord_address-province", "QC");
    b.type_in("#q-landlord_address-postal_code", "H2T 1R2");
    b.go("form button.primary");
    assert!(b.path().ends_with("/verification"), "{}", b.path());
    let t = b.text();
    assert!(t.contains("800,00 $") && t.contains("1er juillet 2019"), "answers shown the French way: {t}");
    b.audit("review");
    b.screenshot("review");
    b.go("form button.primary");
    assert_eq!(b.path(), format!("/demandes/{dossier}"));
    assert!(b.text().contains("Soumise") && b.text().contains("Document joint"), "{}", b.text());
    b.audit("dossier submitted");

    // The case worker asks for information, on the dossier's page.
    for (email, role) in [("agent@example.org", "case_worker"), ("revision@example.org", "reviewer")] {
        s.rt.block_on(s.app.create_account(None, email, "Employé", PASSWORD, &[role.into()])).expect("account");
    }
    let dossier_path = format!("/demandes/{dossier}");
    b.sign_in(&base, "agent@example.org", "/file");
    b.go("form.filters button");
    assert!(b.path().starts_with("/file?"), "{}", b.path());
    b.go(&format!("a[href='{dossier_path}']"));
    b.go("form.assign button");
    assert!(b.text().contains("Pris en charge par vous"), "{}", b.text());
    b.goto(&format!("{base}/file?miens=1"));
    assert!(b.text().contains("Pris en charge par vous"), "my cases: {}", b.text());
    b.audit("queue, my cases");
    b.goto(&format!("{base}{dossier_path}"));
    b.audit("dossier, case worker");
    b.screenshot("caseworker-dossier");
    b.type_in("#info-request", "Veuillez joindre une preuve de paiement du loyer d'avril.");
    b.go("form[action$='/renseignements'] button");
    assert!(b.text().contains("État : Renseignements demandés"), "{}", b.text());
    // The citizen answers.
    b.sign_in(&base, "marie@example.org", &dossier_path);
    assert!(b.text().contains("preuve de paiement du loyer"), "{}", b.text());
    b.audit("information requested, citizen");
    b.type_in("#info-message", "Voici : j'ai payé le loyer d'avril par virement le 1er avril.");
    b.go("form[action$='/information'] button");
    assert!(b.text().contains("État : Soumise"), "{}", b.text());
    // The case worker approves; refusing against the rules needs a justification.
    b.sign_in(&base, "agent@example.org", &dossier_path);
    b.click("#outcome-refused");
    b.go("form[action$='/decision'] button.primary");
    assert!(b.text().contains("donnez une justification"), "{}", b.text());
    b.audit("decision form with an error");
    b.click("#outcome-approved");
    b.go("form[action$='/decision'] button.primary");
    assert!(b.text().contains("État : Entente à signer"), "{}", b.text());
    // The citizen sees the decision and asks for a review.
    b.sign_in(&base, "marie@example.org", &dossier_path);
    let t = b.text();
    assert!(
        t.contains("Votre demande est acceptée")
            && t.contains("1\u{a0}500,00 $")
            && t.contains("Tribunal administratif du Québec"),
        "{t}"
    );
    b.audit("decision");
    b.screenshot("decision");
    b.type_in("#review-reason", "Je demande aussi le loyer de juillet.");
    b.go("form[action$='/demande-revision'] button");
    assert!(b.text().contains("État : Révision demandée"), "{}", b.text());
    // The reviewer (not the decider) reviews.
    b.sign_in(&base, "revision@example.org", &dossier_path);
    b.audit("review form");
    b.click("#outcome-approved");
    b.go("form[action$='/revision'] button.primary");
    assert!(b.text().contains("Révision rendue"), "{}", b.text());
    b.sign_in(&base, "marie@example.org", &dossier_path);
    // The citizen's decision letter is a PDF.
    let letter = b.cmd(
        "POST",
        "/execute/async",
        Some(json!({"script": "const done = arguments[arguments.length - 1];
            fetch(document.querySelector(\"a[href$='/lettre.pdf']\").href)
              .then(r => done(r.status + ' ' + r.headers.get('content-type'))).catch(e => done('error ' + e));", "args": []})),
    );
    assert_eq!(letter, "200 application/pdf");
    b.goto(&format!("{base}/mes-demandes"));
    b.audit("my applications");
    // English, on request.
    b.go("a[lang=en]");
    assert!(b.text().contains("My applications"), "{}", b.text());
    b.goto(&format!("{base}/demandes/{dossier}"));
    assert!(b.text().contains("$1,500.00"), "{}", b.text());
    b.audit("decision in English");

    assert!(b.violations.is_empty(), "axe-core violations:\n{}", b.violations.join("\n"));
}

#[test]
fn the_case_queue_and_error_pages_pass_axe() {
    let Some(mut b) = Browser::start() else { return };
    let s = start("sqlite");
    let citizen = s.user("c@example.org", &["citizen"]);
    let (st, _) = citizen.post(
        "/api/v1/dossiers",
        json!({"program": "shq-pret-loyer-2020", "answers": eligible_loan(), "submit": true}),
    );
    assert_eq!(st, 201);
    s.rt.block_on(s.app.create_account(None, "agent@example.org", "Claude Agente", PASSWORD, &["case_worker".into()]))
        .expect("account");
    b.goto(&format!("{}/connexion?retour=/file", s.base));
    b.type_in("#email", "agent@example.org");
    b.type_in("#password", PASSWORD);
    b.go("form button[type=submit]");
    assert_eq!(b.path(), "/file");
    assert!(b.text().contains("Soumise"), "{}", b.text());
    b.audit("queue");
    b.screenshot("queue");
    b.goto(&format!("{}/nulle-part", s.base));
    assert!(b.text().contains("Page introuvable"));
    b.audit("not found");
    b.goto(&format!("{}/inscription", s.base));
    b.go("form button.primary");
    assert!(b.text().contains("Certaines réponses sont à corriger"));
    b.audit("account form with errors");
    assert!(b.violations.is_empty(), "axe-core violations:\n{}", b.violations.join("\n"));
}

#[test]
fn a_household_waiting_for_its_home_applies_on_a_phone() {
    let Some(mut b) = Browser::start() else { return };
    let s = start("sqlite");
    let base = s.base.clone();
    s.rt.block_on(s.app.create_account(None, "luc@example.org", "Luc Gagnon", PASSWORD, &["citizen".into()]))
        .expect("account");
    b.sign_in(&base, "luc@example.org", "/programmes/shq-menages-en-attente-2020");
    b.audit("program (waiting households)");
    b.go("form button.primary");
    let dossier = b.path().split('/').nth(2).expect("id").to_owned();
    let pdf = |name: &str| {
        let p = std::env::temp_dir().join(format!("{name}-{dossier}.pdf"));
        std::fs::write(&p, b"%PDF-1.4\n% receipt\n").expect("pdf");
        p.display().to_string()
    };
    let attach = |b: &Browser, css: &str, path: String| {
        let el = b.find(css);
        b.cmd("POST", &format!("/element/{el}/value"), Some(json!({"text": path})));
    };
    // 1. The residence.
    b.click("input[name='q.residence_kind'][value='new_house']");
    b.type_in("#q-new_home-line1", "45, rue des Érables");
    b.type_in("#q-new_home-city", "Lévis");
    b.type_in("#q-new_home-province", "QC");
    b.type_in("#q-new_home-postal_code", "G6V 4Z2");
    b.click("input[name='q.principal_residence'][value='true']");
    b.go("form button.primary");
    // 2. The delivery.
    assert!(b.path().ends_with("/etapes/2"), "{}", b.text());
    b.set("q-construction_start", "2019-11-15");
    b.set("q-planned_delivery", "2020-05-01");
    b.set("q-revised_delivery", "2020-06-30");
    b.click("input[name='q.delayed_by_covid'][value='true']");
    attach(&b, "#q-delivery_contract", pdf("contrat"));
    b.audit("delivery step");
    b.go("form button.primary");
    // 3. Temporary lodging, by the month; the receipts are a large scan,
    // sent with a progress bar.
    assert!(b.path().ends_with("/etapes/3"), "{}", b.text());
    b.click("input[name='q.lodging_kind'][value='monthly']");
    b.type_in("#q-monthly_lodging_cost", "1500");
    b.type_in("#q-lodging_months", "2");
    let big = std::env::temp_dir().join(format!("recus-{dossier}.pdf"));
    let mut bytes = b"%PDF-1.4\n".to_vec();
    bytes.resize(3 * 1024 * 1024, b' ');
    std::fs::write(&big, bytes).expect("pdf");
    attach(&b, "#q-lodging_receipts", big.display().to_string());
    b.js(
        "sessionStorage.removeItem('progress'); new MutationObserver(function () { if (document.getElementById('televersement')) sessionStorage.setItem('progress', 'shown'); }).observe(document.body, {childList: true, subtree: true});",
        json!([]),
    );
    b.audit("lodging step");
    b.click("form button.primary");
    let t0 = Instant::now();
    while !b.path().ends_with("/etapes/4") {
        assert!(t0.elapsed() < Duration::from_secs(20), "the upload did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
    b.wait_new_page();
    assert_eq!(b.js("return sessionStorage.getItem('progress');", json!([])), "shown", "a progress bar was shown");
    // 4. Moving and storage.
    assert!(b.path().ends_with("/etapes/4"), "{}", b.text());
    b.type_in("#q-moving_storage_costs", "800,00");
    attach(&b, "#q-moving_receipts", pdf("factures"));
    b.go("form button.primary");
    // 5. Payment.
    assert!(b.path().ends_with("/etapes/5"), "{}", b.text());
    b.type_in("#q-applicant_bank-institution", "815");
    b.type_in("#q-applicant_bank-transit", "20345");
    b.type_in("#q-applicant_bank-account", "7654321");
    b.go("form button.primary");
    assert!(b.path().ends_with("/verification"), "{}", b.text());
    let t = b.text();
    assert!(
        t.contains("1\u{a0}500,00 $") && t.contains("•••321") && !t.contains("7654321"),
        "the account is masked: {t}"
    );
    assert!(t.contains("3\u{a0}800,00 $"), "the explanation gives the amount: {t}");
    b.audit("review (waiting households)");
    b.go("form button.primary");
    assert_eq!(b.path(), format!("/demandes/{dossier}"));
    assert!(b.text().contains("État : Soumise"), "{}", b.text());
    b.audit("dossier (waiting households)");
    assert!(b.violations.is_empty(), "axe-core violations:\n{}", b.violations.join("\n"));
}

#[test]
fn administrators_and_program_managers_work_on_their_screens() {
    let Some(mut b) = Browser::start() else { return };
    let s = start("sqlite");
    let base = s.base.clone();
    for (email, role) in [("admin@example.org", "administrator"), ("pm@example.org", "program_manager")] {
        s.rt.block_on(s.app.create_account(None, email, "Employée", PASSWORD, &[role.into()])).expect("account");
    }
    let citizen = s.user("c@example.org", &["citizen"]);
    let (st, _) = citizen.post(
        "/api/v1/dossiers",
        json!({"program": "shq-pret-loyer-2020", "answers": eligible_loan(), "submit": true}),
    );
    assert_eq!(st, 201);

    // Administration: invite, change roles, verify the audit log.
    b.sign_in(&base, "admin@example.org", "/admin");
    b.audit("administration");
    b.screenshot("admin");
    b.type_in("#inv-name", "Nadia Agente");
    b.type_in("#inv-email", "nadia@example.org");
    b.click("#inv-case_worker");
    b.go("form[action='/admin/invitations'] button");
    assert!(b.text().contains("L'invitation est envoyée") && b.text().contains("nadia@example.org"), "{}", b.text());
    assert!(s.last_mail("nadia@example.org").contains("/reset?token="), "an invitation link was mailed");
    let citizen_id = citizen.user_id.clone().expect("id");
    b.click(&format!("#r-{citizen_id}-reviewer"));
    b.go(&format!("form[action='/admin/utilisateurs/{citizen_id}'] button"));
    assert!(b.text().contains("Les changements sont enregistrés"), "{}", b.text());
    let roles = s.rt.block_on(s.app.store.user(&citizen_id)).expect("user").expect("exists").roles;
    assert_eq!(roles, ["citizen", "reviewer"]);
    // French only, and the organization's name in the header.
    b.type_in("#org-name", "Société d'habitation du Québec");
    b.type_in("#org-tz", "Mars/Olympus");
    b.go("form[action='/admin/parametres'] button");
    assert!(b.text().contains("Ce fuseau horaire est inconnu"), "an unknown time zone is refused: {}", b.text());
    b.type_in("#org-name", "Société d'habitation du Québec");
    b.type_in("#org-tz", "America/Toronto");
    b.click("#org-english");
    b.go("form[action='/admin/parametres'] button");
    assert!(b.text().contains("Société d'habitation du Québec") && !b.text().contains("English"), "{}", b.text());
    // A logo: a real PNG is taken, a PDF is refused.
    let png = std::env::temp_dir().join("logo-guichet-test.png");
    std::fs::write(&png, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90wS\xde\0\0\0\x0cIDATx\x9cc\xf8\xcf\xc0\0\0\x03\x01\x01\0\xc9\xfe\x92\xef\0\0\0\0IEND\xaeB`\x82").expect("png");
    let el = b.find("#org-logo");
    b.cmd("POST", &format!("/element/{el}/value"), Some(json!({"text": png.display().to_string()})));
    b.go("form[action='/admin/logo'] button");
    assert_eq!(b.js("return document.querySelector('.brand img.logo') !== null;", json!([])), true, "{}", b.text());
    let mut en = Client::new(&base);
    en.cookie = Some("lang=en".into());
    let (_, home, _) = en.raw("GET", "/", None, None);
    assert!(home.as_str().unwrap_or_default().contains("<html lang=\"fr\">"), "English is no longer offered");
    s.rt.block_on(s.app.checkpoint()).expect("checkpoint");
    b.go("form[action='/admin/audit'] button");
    assert!(b.text().contains("Journal intact"), "{}", b.text());
    b.goto(&format!("{base}/admin?journal=user:#journal"));
    assert!(
        b.text().contains("user_created") && !b.text().contains("Demande soumise"),
        "the log, filtered: {}",
        b.text()
    );
    b.audit("administration after the audit");

    // Program management: errors with their place, failing tests, then a
    // harmless change simulated on the caseload and published.
    b.sign_in(&base, "pm@example.org", "/gestion-programmes");
    b.audit("program management");
    let set_source = |b: &Browser, text: &str| {
        b.js("document.getElementById('source').value = arguments[0];", json!([text]));
    };
    set_source(&b, "id = \"x\"\ntitle = 12\n");
    b.go("form[action='/gestion-programmes/verifier'] button");
    assert!(b.text().contains("Erreurs dans le fichier") && b.text().contains("program.toml:"), "{}", b.text());
    b.audit("program check with errors");
    set_source(&b, &LOAN.replace("\"1500.00 $\"", "\"1200.00 $\""));
    b.go("form[action='/gestion-programmes/verifier'] button");
    assert!(b.text().contains("Tests en échec"), "{}", b.text());
    assert!(
        b.js("return document.querySelector(\"form[action='/gestion-programmes/publier']\") === null;", json!([]))
            == true
    );
    let renamed = LOAN.replacen("Prêt sans intérêt d'au plus", "Prêt sans intérêts d'au plus", 1);
    assert_ne!(renamed, LOAN);
    // This time as an uploaded file (the text area is left as it was).
    let toml = std::env::temp_dir().join("pret-loyer-v2-guichet-test.toml");
    std::fs::write(&toml, &renamed).expect("toml");
    let el = b.find("#file");
    b.cmd("POST", &format!("/element/{el}/value"), Some(json!({"text": toml.display().to_string()})));
    b.go("form[action='/gestion-programmes/verifier'] button");
    let t = b.text();
    assert!(t.contains("Effet sur les dossiers soumis") && t.contains("tests réussis"), "{t}");
    b.audit("program check and simulation");
    b.screenshot("program-management");
    b.go("form[action='/gestion-programmes/publier'] button");
    assert!(b.text().contains("est publiée"), "{}", b.text());
    let (_, p) = citizen.get("/api/v1/programs/shq-pret-loyer-2020");
    assert!(p["summary"]["fr"].as_str().unwrap_or_default().contains("sans intérêts"), "{p}");
    // The program's dashboard: figures, an SVG chart with its data table, CSV.
    b.go("a[href='/gestion-programmes/shq-pret-loyer-2020/tableau']");
    let t = b.text();
    assert!(t.contains("Demandes soumises") && t.contains("Dossiers par état"), "{t}");
    assert_eq!(
        b.js("return document.querySelectorAll('svg.chart')[0].querySelectorAll('rect').length;", json!([])),
        1,
        "one day, one bar"
    );
    assert!(t.contains("Taux d'acceptation par jour de décision") && t.contains("Délai de décision"), "{t}");
    b.type_in("#budget", "2 000 000,00");
    b.go("form[action$='/budget'] button");
    assert!(b.text().contains("2\u{a0}000\u{a0}000,00 $"), "{}", b.text());
    assert_eq!(b.js("return document.querySelectorAll('svg.budget rect').length;", json!([])), 2);
    b.audit("dashboard");
    b.screenshot("dashboard");
    let mut pm = s.client();
    assert_eq!(pm.login("pm@example.org", PASSWORD).0, 200);
    let (st, csv, _) = pm.raw("GET", "/gestion-programmes/shq-pret-loyer-2020/dossiers.csv", None, None);
    let csv = csv.as_str().unwrap_or_default().to_owned();
    assert_eq!(st, 200);
    assert!(
        csv.starts_with("dossier,state,created_at,submitted_at,amount,flags\n") && csv.lines().count() == 2,
        "{csv}"
    );
    assert!(!csv.contains("Saint-Denis") && !csv.contains("1234567"), "no personal data in the export: {csv}");
    assert_eq!(citizen.raw("GET", "/gestion-programmes/shq-pret-loyer-2020/dossiers.csv", None, None).0, 403);
    assert!(b.violations.is_empty(), "axe-core violations:\n{}", b.violations.join("\n"));
}

/// The loan agreement in the browser: an approved loan's agreement is
/// read page by page and signed by the citizen, then countersigned by a
/// signing officer with their personal certificate (got on their own
/// screen); the dossier is released for payment, the final PDF validates
/// with pdfsig and pyHanko, and the public page says so too.
#[test]
fn a_loan_agreement_is_signed_in_the_browser_by_the_citizen_and_an_officer() {
    let Some(mut b) = Browser::start() else { return };
    let s = start("sqlite");
    let base = s.base.clone();
    for (email, name, role) in [
        ("marie@example.org", "Marie Tremblay", "citizen"),
        ("agent@example.org", "Alain Agent", "case_worker"),
        ("signataire@example.org", "Sophie Signataire", "signing_officer"),
        ("admin@example.org", "Ada Admin", "administrator"),
    ] {
        s.rt.block_on(s.app.create_account(None, email, name, PASSWORD, &[role.into()])).expect("account");
    }
    let mut citizen = Client::new(&base);
    citizen.login("marie@example.org", PASSWORD);
    let (st, d) = citizen.post(
        "/api/v1/dossiers",
        json!({"program": "shq-pret-loyer-2020", "answers": eligible_loan(), "submit": true}),
    );
    assert_eq!(st, 201, "{d}");
    let dossier = d["id"].as_str().expect("id").to_owned();
    let dossier_path = format!("/demandes/{dossier}");

    // The case worker approves: the agreement goes out at once.
    b.sign_in(&base, "agent@example.org", &dossier_path);
    b.click("#outcome-approved");
    b.go("form[action$='/decision'] button.primary");
    assert!(b.text().contains("État : Entente à signer"), "{}", b.text());
    assert!(b.text().contains("Convention de prêt"), "the agreement is listed on the dossier: {}", b.text());
    b.audit("dossier with its agreement (case worker)");

    // The citizen finds it, reads every page, and signs.
    b.sign_in(&base, "marie@example.org", "/enveloppes");
    b.audit("documents to sign (citizen)");
    b.go("main .card a");
    let envelope = b.path();
    assert!(envelope.starts_with("/enveloppes/e_"), "{envelope}");
    // Every page drawn (lazily: scrolled into view, then loaded).
    let pages = b.cmd(
        "POST",
        "/execute/async",
        Some(json!({"script": "const done = arguments[arguments.length - 1];
            const imgs = Array.from(document.querySelectorAll('.page img'));
            imgs.forEach(i => { i.loading = 'eager'; i.scrollIntoView(); });
            Promise.all(imgs.map(i => i.decode().then(() => i.alt, () => 'broken ' + i.src))).then(done);", "args": []})),
    );
    let pages = pages.as_array().cloned().unwrap_or_default();
    assert_eq!(pages.len(), 2, "{pages:?}");
    assert!(pages.iter().all(|p| p.as_str().is_some_and(|a| a.starts_with("Page "))), "every page is drawn: {pages:?}");
    b.audit("signing ceremony (citizen)");
    b.screenshot("agreement-citizen");
    // Agreeing is required (the browser says so before sending; the
    // server checks it too, see tests/agreements.rs).
    assert_eq!(b.js("return document.getElementById('agree-0').validity.valueMissing;", json!([])), true);
    b.click("#agree-0");
    b.go(&format!("form[action='{envelope}/signer/0'] button.primary"));
    assert!(b.text().contains("Votre signature est apposée"), "{}", b.text());
    b.audit("signed (citizen)");

    // The officer gets a certificate, then countersigns.
    b.sign_in(&base, "signataire@example.org", "/compte/certificat");
    assert!(b.text().contains("pas encore de certificat"), "{}", b.text());
    b.audit("my certificate (none yet)");
    b.type_in("#passphrase", "une phrase secrète assez longue");
    b.type_in("#passphrase-again", "une phrase secrète assez longue");
    b.go("form[action='/compte/certificat'] button.primary");
    assert!(b.text().contains("Votre certificat est prêt"), "{}", b.text());
    b.audit("my certificate");
    b.goto(&format!("{base}/enveloppes"));
    b.go("main .card a");
    assert_eq!(b.path(), envelope);
    b.click("#agree-1");
    b.type_in("#passphrase-1", "pas la bonne phrase");
    b.go(&format!("form[action='{envelope}/signer/1'] button.primary"));
    assert!(b.text().contains("Phrase secrète incorrecte"), "{}", b.text());
    b.audit("wrong passphrase");
    b.click("#agree-1");
    b.type_in("#passphrase-1", "une phrase secrète assez longue");
    b.go(&format!("form[action='{envelope}/signer/1'] button.primary"));
    let t = b.text();
    assert!(t.contains("Signé par tous") && t.contains("Certificat d'achèvement"), "{t}");
    b.audit("completed envelope");
    b.screenshot("agreement-completed");

    // The dossier is released for payment.
    let (_, d) = citizen.get(&format!("/api/v1/dossiers/{dossier}"));
    assert_eq!(d["state"], "agreement_signed", "{d}");

    // The final PDF: pdfsig and pyHanko, trusting the organization's root.
    let id = envelope.trim_start_matches("/enveloppes/");
    let (st, pdf) = citizen.bytes("GET", &format!("/api/v1/envelopes/{id}/document"), None);
    assert_eq!(st, 200);
    let (_, ca) = citizen.bytes("GET", "/pki/ca.pem", None);
    let dir = tmpdir("browser");
    let file = dir.join("convention-signee.pdf");
    std::fs::write(&file, &pdf).expect("write");
    external_validators(&dir, &String::from_utf8(ca).expect("pem"), &file, 2);

    // Anyone can check it on the public page (signed out).
    b.cmd("DELETE", "/cookie", None);
    b.goto(&format!("{base}/verifier"));
    b.audit("verify (empty)");
    let el = b.find("#document");
    b.cmd("POST", &format!("/element/{el}/value"), Some(json!({"text": file.display().to_string()})));
    b.go("form[action='/verifier'] button.primary");
    let t = b.text();
    assert!(t.contains("Toutes les signatures sont valides.") && t.contains("Sophie Signataire"), "{t}");
    assert!(t.contains("Horodatage du document 1"), "{t}");
    b.audit("verify (result)");
    b.screenshot("verify");

    // An administrator revokes the officer's certificate (a lost laptop).
    let officer = s.rt.block_on(s.app.store.user_by_email("signataire@example.org")).expect("db").expect("user");
    b.sign_in(&base, "admin@example.org", "/admin");
    b.go(&format!("a[href='/admin/utilisateurs/{}/certificats']", officer.id));
    assert!(
        b.text().contains("Certificats de signature de Sophie Signataire") && b.text().contains("Valide"),
        "{}",
        b.text()
    );
    b.audit("certificates (administrator)");
    b.js("document.querySelector('select[name=reason]').value = 'key_compromise';", json!([]));
    b.go("form[action^='/admin/certificats/'] button");
    assert!(b.text().contains("Le certificat est révoqué") && b.text().contains("clé compromise"), "{}", b.text());
    b.audit("certificate revoked (administrator)");
    assert!(b.violations.is_empty(), "axe-core violations:\n{}", b.violations.join("\n"));
}

/// An employee sends a PDF for signature from the screen, to an external
/// person first, then a colleague; the external person signs in the
/// browser with the code emailed to them, without an account.
#[test]
fn an_employee_sends_a_pdf_and_an_external_person_signs_it_with_an_emailed_code() {
    let Some(mut b) = Browser::start() else { return };
    let s = start("sqlite");
    let base = s.base.clone();
    for (email, name, role) in [
        ("marie@example.org", "Marie Tremblay", "citizen"),
        ("agent@example.org", "Alain Agent", "case_worker"),
        ("alice@example.org", "Alice Collègue", "reviewer"),
    ] {
        s.rt.block_on(s.app.create_account(None, email, name, PASSWORD, &[role.into()])).expect("account");
    }
    // A PDF to send: any will do (an agreement generated for a loan).
    let mut citizen = Client::new(&base);
    citizen.login("marie@example.org", PASSWORD);
    let (_, d) = citizen.post(
        "/api/v1/dossiers",
        json!({"program": "shq-pret-loyer-2020", "answers": eligible_loan(), "submit": true}),
    );
    let mut agent = Client::new(&base);
    agent.login("agent@example.org", PASSWORD);
    let dossier = d["id"].as_str().expect("id");
    agent.post(&format!("/api/v1/dossiers/{dossier}/decision"), json!({"outcome": "approved"}));
    let (_, list) = citizen.get(&format!("/api/v1/dossiers/{dossier}/envelopes"));
    let loan = list[0]["id"].as_str().expect("id").to_owned();
    let (_, pdf) = citizen.bytes("GET", &format!("/api/v1/envelopes/{loan}/document?file=original"), None);
    let file = tmpdir("send").join("contrat.pdf");
    std::fs::write(&file, &pdf).expect("write");

    b.sign_in(&base, "agent@example.org", "/enveloppes");
    b.audit("documents to sign and sent (employee)");
    b.go("a[href='/enveloppes/nouvelle']");
    b.audit("new envelope");
    b.type_in("#title", "Contrat de services");
    let el = b.find("#document");
    b.cmd("POST", &format!("/element/{el}/value"), Some(json!({"text": file.display().to_string()})));
    b.js(
        "document.getElementById('kind-1').value = 'external'; document.getElementById('kind-2').value = 'employee';",
        json!([]),
    );
    b.type_in("#name-1", "Bernard Externe");
    b.type_in("#email-1", "bernard@partenaire.example");
    b.type_in("#email-2", "alice@example.org");
    b.type_in("#group-2", "2");
    b.go("form[action='/enveloppes/nouvelle'] button.primary");
    let envelope = b.path();
    assert!(envelope.starts_with("/enveloppes/e_"), "{envelope}: {}", b.text());
    assert!(b.text().contains("Bernard Externe") && b.text().contains("Alice Collègue"), "{}", b.text());
    b.audit("envelope sent (sender)");

    // The external person, signed out, from the emailed link.
    let mail = s.last_mail("bernard@partenaire.example");
    let link = mail.split_whitespace().find(|w| w.contains("/signer/")).expect("link").to_owned();
    let path = link.splitn(4, '/').nth(3).map(|p| format!("/{p}")).expect("path");
    b.cmd("DELETE", "/cookie", None);
    b.goto(&format!("{base}{path}"));
    assert!(b.text().contains("Pour Bernard Externe"), "{}", b.text());
    b.audit("external signer");
    b.go(&format!("form[action='{path}/code'] button"));
    assert!(b.text().contains("Un code vous a été envoyé"), "{}", b.text());
    let code: String = s
        .last_mail("bernard@partenaire.example")
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .expect("code")
        .to_owned();
    b.type_in("#code", if code == "000000" { "111111" } else { "000000" });
    b.click("#agree");
    b.go(&format!("form[action='{path}/signature'] button.primary"));
    assert!(b.text().contains("Ce code est incorrect"), "{}", b.text());
    b.audit("external signer, wrong code");
    b.type_in("#code", &code);
    b.click("#agree");
    b.go(&format!("form[action='{path}/signature'] button.primary"));
    assert!(b.text().contains("Votre signature est apposée"), "{}", b.text());
    b.audit("external signer, signed");
    // Alice's turn has come: she is told.
    assert!(s.last_mail("alice@example.org").contains(&envelope), "{}", s.last_mail("alice@example.org"));
    assert!(b.violations.is_empty(), "axe-core violations:\n{}", b.violations.join("\n"));
}

/// A template made on its screen, then a CSV sent from it: one envelope
/// per row; a bad row sends nothing and is named.
#[test]
fn a_template_is_made_on_screen_and_a_csv_sends_one_envelope_per_row() {
    let Some(mut b) = Browser::start() else { return };
    let s = start("sqlite");
    let base = s.base.clone();
    s.rt.block_on(s.app.create_account(None, "agent@example.org", "Alain Agent", PASSWORD, &["case_worker".into()]))
        .expect("account");
    b.sign_in(&base, "agent@example.org", "/modeles");
    b.audit("templates (none)");
    b.go("a[href='/modeles/nouveau']");
    b.audit("new template");
    b.type_in("#name", "Contrat de services");
    b.type_in("#title", "Contrat — {nom}");
    b.type_in("#label-1", "Le client");
    b.js("document.getElementById('kind-1').value = 'external';", json!([]));
    b.go("form[action='/modeles/nouveau'] button.primary");
    assert!(b.path().starts_with("/modeles/t_"), "{}: {}", b.path(), b.text());
    assert!(b.text().contains("nom,signer1_email,signer1_name"), "{}", b.text());
    b.audit("template");
    let dir = tmpdir("bulk");
    let bad = dir.join("mauvais.csv");
    std::fs::write(&bad, "nom,signer1_email,signer1_name\nA,a@example.org,A\nB,pas-une-adresse,B\n").expect("csv");
    let el = b.find("#csv");
    b.cmd("POST", &format!("/element/{el}/value"), Some(json!({"text": bad.display().to_string()})));
    b.go("form[action$='/envoi-groupe'] button");
    assert!(b.text().contains("Rien n'a été envoyé") && b.text().contains("line 3"), "{}", b.text());
    b.audit("bulk send refused");
    let good = dir.join("clients.csv");
    std::fs::write(&good, "nom,signer1_email,signer1_name\nA,a@example.org,A\nB,b@example.org,B\n").expect("csv");
    let el = b.find("#csv");
    b.cmd("POST", &format!("/element/{el}/value"), Some(json!({"text": good.display().to_string()})));
    b.go("form[action$='/envoi-groupe'] button");
    assert!(b.text().contains("2 envois faits"), "{}", b.text());
    assert!(s.last_mail("b@example.org").contains("Contrat — B"));
    b.audit("bulk send done");
    assert!(b.violations.is_empty(), "axe-core violations:\n{}", b.violations.join("\n"));
}

/// Two finance officers on their screens: the first builds a batch from
/// the ready loans, the second approves it and downloads the bank files
/// (the pain.001 validates against the ISO schema); the bank's returns are
/// imported from the screen; the loans page and the demo mailbox; every
/// page passes axe.
#[test]
fn finance_officers_build_approve_and_download_a_batch() {
    let Some(mut b) = Browser::start() else { return };
    let config = guichet_app::Config { mailbox: true, ..payments_config() };
    let s = start_with("sqlite", config);
    let base = s.base.clone();
    for (email, name, role) in [
        ("agent@example.org", "Alain Agent", "case_worker"),
        ("signataire@example.org", "Sophie Signataire", "signing_officer"),
        ("france@example.org", "France Finances", "finance_officer"),
        ("felix@example.org", "Félix Finances", "finance_officer"),
    ] {
        s.rt.block_on(s.app.create_account(None, email, name, PASSWORD, &[role.into()])).expect("account");
    }
    let mut worker = Client::new(&base);
    worker.login("agent@example.org", PASSWORD);
    let mut officer = Client::new(&base);
    officer.login("signataire@example.org", PASSWORD);
    assert_eq!(officer.post("/api/v1/me/certificates", json!({"passphrase": PASSWORD})).0, 201);
    officer.login("signataire@example.org", PASSWORD);
    // Two loans, signed by their borrowers and the officer.
    let mut dossiers = Vec::new();
    for (email, street) in [("marie@example.org", "12, rue Rachel"), ("jean@example.org", "98, avenue du Parc")] {
        s.rt.block_on(s.app.create_account(None, email, "Marie Tremblay", PASSWORD, &["citizen".into()]))
            .expect("account");
        let mut citizen = Client::new(&base);
        citizen.login(email, PASSWORD);
        let mut answers = eligible_loan();
        answers["home"]["line1"] = street.into();
        let (_, d) = citizen
            .post("/api/v1/dossiers", json!({"program": "shq-pret-loyer-2020", "answers": answers, "submit": true}));
        let id = d["id"].as_str().expect("id").to_owned();
        worker.post(&format!("/api/v1/dossiers/{id}/decision"), json!({"outcome": "approved"}));
        let (_, list) = citizen.get(&format!("/api/v1/dossiers/{id}/envelopes"));
        let env = list[0]["id"].as_str().expect("envelope").to_owned();
        assert_eq!(citizen.post(&format!("/api/v1/envelopes/{env}/recipients/0/sign"), json!({"agree": true})).0, 200);
        let (st, e) = officer.post(
            &format!("/api/v1/envelopes/{env}/recipients/1/sign"),
            json!({"agree": true, "passphrase": PASSWORD}),
        );
        assert_eq!(st, 200, "{e}");
        dossiers.push(id);
    }

    // The first officer: the queue, then a batch of both.
    b.sign_in(&base, "france@example.org", "/finances");
    let t = b.text();
    assert!(t.contains("Prêtes à payer") && t.contains("Gestion immobilière Tremblay inc."), "{t}");
    b.audit("payments (finance officer)");
    b.screenshot("finances");
    b.set("execution_date", "2099-01-15");
    b.go("form[action='/finances/lots'] button.primary");
    let batch = b.path();
    assert!(batch.starts_with("/finances/lots/LOT-"), "{batch}");
    let t = b.text();
    assert!(t.contains("À approuver") && t.contains("attend l'approbation d'un autre agent"), "{t}");
    assert!(!t.contains("Télécharger"), "no file before the approval: {t}");
    b.audit("batch to approve (its builder)");

    // The second officer approves and downloads.
    b.sign_in(&base, "felix@example.org", &batch);
    b.audit("batch to approve (second officer)");
    b.go(&format!("form[action='{batch}/approbation'] button.primary"));
    let t = b.text();
    assert!(t.contains("Approuvé par") && t.contains("Télécharger le fichier ISO 20022"), "{t}");
    // A link cannot write the file (it marks the batch sent): GET is refused.
    let st = b.js("return fetch(arguments[0]).then(r => r.status);", json!([format!("{batch}/fichier")]));
    assert_eq!(st, 405, "{st}");
    b.audit("approved batch");
    b.screenshot("batch-approved");
    let fetch = |b: &Browser, format: &str| -> String {
        let v = b.cmd(
            "POST",
            "/execute/async",
            Some(json!({"script": "const done = arguments[arguments.length - 1];
                const body = new URLSearchParams({_csrf: document.querySelector('input[name=_csrf]').value, format: arguments[1]});
                fetch(arguments[0], {method: 'POST', body}).then(r => r.text()).then(done, e => done('error ' + e));",
                "args": [format!("{batch}/fichier"), format]})),
        );
        v.as_str().expect("file").to_owned()
    };
    let xml = fetch(&b, "pain001");
    assert!(xml.contains("<CtrlSum>3000.00</CtrlSum>"), "{xml}");
    if let Some(xsd) = std::env::var_os("GUICHET_PAIN001_XSD") {
        let f = tmpdir("browser-pain001").join("lot.xml");
        std::fs::write(&f, &xml).expect("write");
        let (ok, out) = run(Command::new("xmllint").arg("--noout").arg("--schema").arg(&xsd).arg(&f));
        assert!(ok, "xmllint: {out}");
    } else {
        assert!(!required(), "GUICHET_PAIN001_XSD is not set");
    }
    let aft = fetch(&b, "cpa005");
    assert!(aft.split("\r\n").filter(|r| !r.is_empty()).all(|r| r.len() == 1464), "Standard 005 records");
    b.goto(&format!("{base}{batch}"));
    assert!(b.text().contains("SHA-256 pain.001") && b.text().contains("Transmis"), "{}", b.text());

    // The bank's returns, from the screen: a bad file first (nothing applied).
    let refs: Vec<String> = {
        let id = batch.trim_start_matches("/finances/lots/");
        let v = s.rt.block_on(s.app.store.batch_payments(id)).expect("payments");
        v.into_iter().map(|p| p.reference).collect()
    };
    let dir = tmpdir("browser-returns");
    let upload = |b: &Browser, name: &str, text: String| {
        let f = dir.join(name);
        std::fs::write(&f, text).expect("write");
        b.goto(&format!("{base}/finances"));
        let el = b.find("#file");
        b.cmd("POST", &format!("/element/{el}/value"), Some(json!({"text": f.display().to_string()})));
        b.go("form[action='/finances/retours'] button");
    };
    upload(&b, "bad.csv", format!("reference,status,reason\n{},paid,\nP999,paid,\n", refs[0]));
    assert!(b.text().contains("line 3") && b.text().contains("no such payment"), "{}", b.text());
    b.audit("returns refused");
    upload(
        &b,
        "good.csv",
        format!("reference,status,reason\n{},paid,\n{},returned,905 compte fermé\n", refs[0], refs[1]),
    );
    assert!(b.text().contains("Retours appliqués : 1 payés, 1 retournés"), "{}", b.text());
    b.audit("returns applied");

    // The returned one is back with the case workers, its reason shown.
    b.sign_in(&base, "agent@example.org", "/file");
    assert!(b.text().contains("Paiement retourné"), "{}", b.text());
    let returned =
        s.rt.block_on(s.app.store.payments_by_reference(&[refs[1].clone()])).expect("payment").remove(0).dossier;
    b.goto(&format!("{base}/demandes/{returned}"));
    assert!(b.text().contains("905 compte fermé") && b.text().contains("Courriels envoyés"), "{}", b.text());
    b.audit("returned payment on the dossier (case worker)");

    // The loans, and the demo mailbox of a borrower.
    b.sign_in(&base, "france@example.org", "/finances/prets");
    assert!(b.text().contains("Prêts à rembourser") && b.text().contains("1er août 2021"), "{}", b.text());
    b.audit("loans");
    assert!(!s.wait_mail("marie@example.org", "Paiement envoyé").is_empty(), "payment notice queued");
    b.sign_in(&base, "marie@example.org", "/courriels");
    assert!(b.text().contains("Paiement envoyé") && b.text().contains("Demande reçue"), "{}", b.text());
    b.audit("demo mailbox");
    assert!(b.violations.is_empty(), "axe-core violations:\n{}", b.violations.join("\n"));
}
