//! `guichet ca`, `guichet sign` and `guichet verify` as a user runs them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn guichet(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_guichet")).args(args).current_dir(dir).output().expect("runs")
}

/// `guichet sign FROM TO` with WHO's key, certificate and chain
/// (`WHO.key`, `WHO.pem`, `WHO-chain.pem`), then `extra`.
fn sign_as(dir: &Path, who: &str, from: &str, to: &str, extra: &[&str]) -> Output {
    let (key, cert, chain) = (format!("{who}.key"), format!("{who}.pem"), format!("{who}-chain.pem"));
    let args = [&["sign", from, to, "--key", &key, "--cert", &cert, "--chain", &chain], extra].concat();
    guichet(dir, &args)
}

/// `guichet verify FILE --json`, trusting the test CA's root.
fn verify_json(dir: &Path, file: &str) -> serde_json::Value {
    let o = guichet(dir, &["verify", file, "--trust", "ca/root.pem", "--json"]);
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)))
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn workdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("guichet-sign-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("dir");
    d
}

/// `guichet tsa serve` on a free loopback port, stopped when dropped (even
/// when the test fails).
struct Tsa {
    child: std::process::Child,
    url: String,
}

impl Drop for Tsa {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_tsa(d: &Path) -> Tsa {
    let port =
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port");
    let listen = format!("127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_guichet"))
        .args([
            "tsa",
            "serve",
            "--key",
            "tsa.key",
            "--cert",
            "tsa.pem",
            "--chain",
            "tsa-chain.pem",
            "--listen",
            &listen,
        ])
        .current_dir(d)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("server");
    let tsa = Tsa { child, url: format!("http://{listen}/") };
    // Wait until it listens (bounded).
    let up = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        std::net::TcpStream::connect(&listen).is_ok()
    });
    assert!(up, "the timestamp authority did not start");
    tsa
}

/// A one-page PDF with a classic cross-reference table.
fn pdf() -> Vec<u8> {
    let objs = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        "<< /Length 0 >>\nstream\n\nendstream",
    ];
    let mut out = b"%PDF-1.7\n".to_vec();
    let mut offs = Vec::new();
    for (i, o) in objs.iter().enumerate() {
        offs.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let x = out.len();
    out.extend_from_slice(b"xref\n0 5\n0000000000 65535 f\r\n");
    for o in offs {
        out.extend_from_slice(format!("{o:010} 00000 n\r\n").as_bytes());
    }
    out.extend_from_slice(format!("trailer\n<< /Size 5 /Root 1 0 R >>\nstartxref\n{x}\n%%EOF\n").as_bytes());
    out
}

#[test]
fn ca_issue_sign_verify_and_exit_codes() {
    let d = workdir("flow");
    std::fs::write(d.join("in.pdf"), pdf()).expect("write");
    let o = guichet(&d, &["ca", "init", "--dir", "ca", "--organization", "Société du Plan Nord"]);
    assert!(o.status.success(), "{}", text(&o));
    // A second init does not overwrite the CA.
    assert_eq!(guichet(&d, &["ca", "init", "--dir", "ca", "--organization", "X"]).status.code(), Some(2));
    let o = guichet(
        &d,
        &["ca", "issue", "--dir", "ca", "--name", "Alice Tremblay", "--email", "alice@example.org", "--out", "alice"],
    );
    assert!(o.status.success(), "{}", text(&o));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.join("alice.key")).expect("key").permissions().mode();
        assert_eq!(mode & 0o077, 0, "private keys are not readable by others");
    }
    let o = sign_as(&d, "alice", "in.pdf", "out.pdf", &["--reason", "Accord"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = guichet(&d, &["verify", "out.pdf", "--trust", "ca/root.pem"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("TOTAL-PASSED"));
    // A visible signature, and a malformed rectangle refused at once.
    let o = sign_as(&d, "alice", "out.pdf", "vis.pdf", &["--visible", "1,300,40,250,60", "--reason", "Accord"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = guichet(&d, &["verify", "vis.pdf", "--trust", "ca/root.pem"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = sign_as(&d, "alice", "out.pdf", "x.pdf", &["--visible", "1,300,40"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("PAGE,X,Y,W,H"), "{}", text(&o));
    let o = sign_as(&d, "alice", "out.pdf", "x.pdf", &["--visible", "9,300,40,250,60"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("no page 9"), "{}", text(&o));
    let v = verify_json(&d, "out.pdf");
    assert_eq!(v["signatures"][0]["indication"], "TOTAL-PASSED");
    assert_eq!(v["signatures"][0]["level"], "B-B");
    // Untrusted: exit 1. Unreadable: exit 2.
    assert_eq!(guichet(&d, &["verify", "out.pdf"]).status.code(), Some(1));
    assert_eq!(guichet(&d, &["verify", "in.pdf", "--trust", "ca/root.pem"]).status.code(), Some(1));
    std::fs::write(d.join("junk.pdf"), b"not a pdf").expect("write");
    assert_eq!(guichet(&d, &["verify", "junk.pdf"]).status.code(), Some(2));
    // Revocation and CRL.
    let o = guichet(&d, &["ca", "revoke", "--dir", "ca", "--serial", "03e8", "--reason", "key-compromise"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = guichet(&d, &["ca", "crl", "--dir", "ca", "--out", "ca.crl"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(std::fs::read(d.join("ca.crl")).is_ok_and(|c| c.first() == Some(&0x30)));
}

#[test]
fn bad_signing_inputs_leave_no_output_file() {
    let d = workdir("bad");
    std::fs::write(d.join("in.pdf"), pdf()).expect("write");
    assert!(guichet(&d, &["ca", "init", "--dir", "ca", "--organization", "Org"]).status.success());
    assert!(
        guichet(&d, &["ca", "issue", "--dir", "ca", "--name", "A", "--email", "a@x.org", "--out", "a"])
            .status
            .success()
    );
    assert!(
        guichet(&d, &["ca", "issue", "--dir", "ca", "--name", "B", "--email", "b@x.org", "--out", "b"])
            .status
            .success()
    );
    // Alice's key with Bob's certificate.
    let o = guichet(&d, &["sign", "in.pdf", "out.pdf", "--key", "a.key", "--cert", "b.pem"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("does not match"), "{}", text(&o));
    // A truncated PDF.
    let p = pdf();
    std::fs::write(d.join("cut.pdf"), &p[..p.len() - 30]).expect("write");
    let o = guichet(&d, &["sign", "cut.pdf", "out.pdf", "--key", "a.key", "--cert", "a.pem"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("truncated"), "{}", text(&o));
    assert!(!d.join("out.pdf").exists());
    let leftovers: Vec<_> = std::fs::read_dir(&d)
        .expect("dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

/// B-T through `guichet tsa serve` on loopback, over HTTP.
#[test]
fn sign_b_t_with_the_built_in_timestamp_authority_over_http() {
    let d = workdir("bt");
    std::fs::write(d.join("in.pdf"), pdf()).expect("write");
    assert!(guichet(&d, &["ca", "init", "--dir", "ca", "--organization", "Org"]).status.success());
    assert!(
        guichet(&d, &["ca", "issue", "--dir", "ca", "--name", "A", "--email", "a@x.org", "--out", "a"])
            .status
            .success()
    );
    assert!(guichet(&d, &["ca", "issue-tsa", "--dir", "ca", "--out", "tsa"]).status.success());
    let tsa = start_tsa(&d);
    let url = tsa.url.clone();
    let o = sign_as(&d, "a", "in.pdf", "bt.pdf", &["--level", "B-T", "--tsa", &url]);
    assert!(o.status.success(), "{}", text(&o));
    let v = verify_json(&d, "bt.pdf");
    assert_eq!(v["signatures"][0]["indication"], "TOTAL-PASSED", "{v}");
    assert_eq!(v["signatures"][0]["level"], "B-T", "{v}");
    // B-LTA: the CRLs of the chain stored, then a document timestamp.
    assert!(guichet(&d, &["ca", "crl", "--dir", "ca", "--out", "issuing.crl"]).status.success());
    let root_crl = guichet(&d, &["ca", "crl", "--dir", "ca", "--root", "--out", "root.crl"]);
    assert!(root_crl.status.success(), "{}", text(&root_crl));
    let o = sign_as(
        &d,
        "a",
        "in.pdf",
        "lta.pdf",
        &["--chain", "ca/root.pem", "--level", "B-LTA", "--tsa", &url, "--crl", "issuing.crl", "--crl", "root.crl"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let v = verify_json(&d, "lta.pdf");
    assert_eq!(v["signatures"][0]["level"], "B-LTA", "{v}");
    assert_eq!(v["signatures"][1]["level"], "document timestamp", "{v}");
    // B-LT with OCSP responses from the CA instead of CRLs.
    assert!(guichet(&d, &["ca", "ocsp", "--dir", "ca", "--cert", "a.pem", "--out", "a.ocsp"]).status.success());
    let o = guichet(&d, &["ca", "ocsp", "--dir", "ca", "--root", "--cert", "ca/issuing.pem", "--out", "issuing.ocsp"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = sign_as(
        &d,
        "a",
        "in.pdf",
        "lt.pdf",
        &["--level", "B-LT", "--tsa", &url, "--ocsp", "a.ocsp", "--ocsp", "issuing.ocsp"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let v = verify_json(&d, "lt.pdf");
    assert_eq!(v["signatures"][0]["level"], "B-LT", "{v}");
    // B-T without an authority is a usage error, and nothing is written.
    let o = sign_as(&d, "a", "in.pdf", "x.pdf", &["--level", "B-T"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!d.join("x.pdf").exists());
}

/// A key on a real PKCS#11 token (SoftHSM2): sign, then the precise errors
/// for a wrong PIN, a key that is not the certificate's, a missing key.
#[test]
fn sign_with_a_softhsm2_token() {
    let module = "/usr/lib/softhsm/libsofthsm2.so";
    let present = std::path::Path::new(module).exists()
        && Command::new("softhsm2-util").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(
        present || std::env::var_os("GUICHET_REQUIRE_VALIDATORS").is_none(),
        "SoftHSM2 is required but not installed"
    );
    if !present {
        eprintln!("SoftHSM2 not installed: skipped here (CI runs it)");
        return;
    }
    let d = workdir("hsm");
    std::fs::write(d.join("in.pdf"), pdf()).expect("write");
    assert!(guichet(&d, &["ca", "init", "--dir", "ca", "--organization", "Org"]).status.success());
    assert!(
        guichet(&d, &["ca", "issue", "--dir", "ca", "--name", "A", "--email", "a@x.org", "--out", "a"])
            .status
            .success()
    );
    assert!(
        guichet(&d, &["ca", "issue", "--dir", "ca", "--name", "B", "--email", "b@x.org", "--out", "b"])
            .status
            .success()
    );
    std::fs::create_dir_all(d.join("tokens")).expect("tokens");
    let conf = d.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            d.join("tokens").display()
        ),
    )
    .expect("conf");
    let util = |args: &[&str]| {
        Command::new("softhsm2-util")
            .args(args)
            .env("SOFTHSM2_CONF", &conf)
            .current_dir(&d)
            .output()
            .expect("softhsm2-util")
    };
    assert!(
        util(&["--init-token", "--free", "--label", "guichet", "--pin", "1234", "--so-pin", "5678"]).status.success()
    );
    assert!(
        util(&["--import", "a.key", "--token", "guichet", "--label", "alice", "--id", "01", "--pin", "1234"])
            .status
            .success()
    );
    let sign = |pin: &str, label: &str, cert: &str, out: &str| {
        Command::new(env!("CARGO_BIN_EXE_guichet"))
            .args([
                "sign",
                "in.pdf",
                out,
                "--pkcs11-module",
                module,
                "--pkcs11-label",
                label,
                "--cert",
                cert,
                "--chain",
                "a-chain.pem",
            ])
            .env("SOFTHSM2_CONF", &conf)
            .env("GUICHET_PKCS11_PIN", pin)
            .current_dir(&d)
            .output()
            .expect("runs")
    };
    let o = sign("1234", "alice", "a.pem", "hsm.pdf");
    assert!(o.status.success(), "{}", text(&o));
    let v = guichet(&d, &["verify", "hsm.pdf", "--trust", "ca/root.pem"]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));
    let o = sign("0000", "alice", "a.pem", "x.pdf");
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("wrong PIN"), "{}", text(&o));
    let o = sign("1234", "alice", "b.pem", "x.pdf");
    assert!(text(&o).contains("does not match the certificate"), "{}", text(&o));
    let o = sign("1234", "nobody", "a.pem", "x.pdf");
    assert!(text(&o).contains("no private key labelled `nobody`"), "{}", text(&o));
    assert!(!d.join("x.pdf").exists());
}

/// Renewal keeps the key; a PKCS#12 file signs like the separate files;
/// a wrong PKCS#12 password is a precise error.
#[test]
fn renew_and_pkcs12() {
    let d = workdir("p12");
    std::fs::write(d.join("in.pdf"), pdf()).expect("write");
    assert!(guichet(&d, &["ca", "init", "--dir", "ca", "--organization", "Org"]).status.success());
    assert!(
        guichet(&d, &["ca", "issue", "--dir", "ca", "--name", "A", "--email", "a@x.org", "--out", "a", "--days", "1"])
            .status
            .success()
    );
    let o = guichet(&d, &["ca", "renew", "--dir", "ca", "--cert", "a.pem", "--days", "400", "--out", "a2.pem"]);
    assert!(o.status.success(), "{}", text(&o));
    // The renewed certificate works with the same key.
    let o = guichet(&d, &["sign", "in.pdf", "r.pdf", "--key", "a.key", "--cert", "a2.pem", "--chain", "a-chain.pem"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(guichet(&d, &["verify", "r.pdf", "--trust", "ca/root.pem"]).status.code(), Some(0));
    // A PKCS#12 file made by openssl, as an organization's CA delivers it.
    let made = Command::new("openssl")
        .args([
            "pkcs12",
            "-export",
            "-inkey",
            "a.key",
            "-in",
            "a.pem",
            "-certfile",
            "a-chain.pem",
            "-passout",
            "pass:s3cret",
            "-out",
            "a.p12",
        ])
        .current_dir(&d)
        .output();
    if !made.as_ref().is_ok_and(|o| o.status.success()) {
        assert!(std::env::var_os("GUICHET_REQUIRE_VALIDATORS").is_none(), "openssl is required");
        return;
    }
    let p12 = |pw: &str, out: &str| {
        Command::new(env!("CARGO_BIN_EXE_guichet"))
            .args(["sign", "in.pdf", out, "--p12", "a.p12"])
            .env("GUICHET_P12_PASSWORD", pw)
            .current_dir(&d)
            .output()
            .expect("runs")
    };
    let o = p12("s3cret", "p.pdf");
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(guichet(&d, &["verify", "p.pdf", "--trust", "ca/root.pem"]).status.code(), Some(0));
    let o = p12("wrong", "x.pdf");
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("wrong password"), "{}", text(&o));
    assert!(!d.join("x.pdf").exists());
}

/// Serves the files of `dir` over HTTP on a loopback port (the CA's
/// publication point); returns the base URL.
fn publish(dir: &Path) -> String {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("listen");
    let port = server.server_addr().to_ip().map(|a| a.port()).expect("port");
    let dir = dir.to_owned();
    std::thread::spawn(move || {
        for req in server.incoming_requests() {
            let name = req.url().trim_start_matches('/').to_owned();
            let _ = match std::fs::read(dir.join(&name)) {
                Ok(bytes) if !name.contains('/') && !name.contains("..") => {
                    req.respond(tiny_http::Response::from_data(bytes))
                }
                _ => req.respond(tiny_http::Response::empty(404)),
            };
        }
    });
    format!("http://127.0.0.1:{port}")
}

#[test]
fn verify_online_fetches_the_crls_the_certificates_name() {
    let d = workdir("online");
    std::fs::write(d.join("in.pdf"), pdf()).expect("pdf");
    let base = publish(&d);
    let (crl, root_crl) = (format!("{base}/issuing.crl"), format!("{base}/root.crl"));
    let o = guichet(
        &d,
        &["ca", "init", "--dir", "ca", "--organization", "Org", "--crl-url", &crl, "--root-crl-url", &root_crl],
    );
    assert!(o.status.success(), "{}", text(&o));
    let bad = guichet(&d, &["ca", "init", "--dir", "ca2", "--organization", "Org", "--crl-url", "file:///etc/passwd"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(
        guichet(&d, &["ca", "issue", "--dir", "ca", "--name", "A", "--email", "a@x.org", "--out", "a"])
            .status
            .success()
    );
    assert!(sign_as(&d, "a", "in.pdf", "out.pdf", &[]).status.success());
    assert!(guichet(&d, &["ca", "crl", "--dir", "ca", "--out", "issuing.crl"]).status.success());
    assert!(guichet(&d, &["ca", "crl", "--dir", "ca", "--root", "--out", "root.crl"]).status.success());
    let verify = |extra: &[&str]| {
        let args = [&["verify", "out.pdf", "--trust", "ca/root.pem", "--require-revocation", "--json"], extra].concat();
        let o = guichet(&d, &args);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
        (o.status.code(), v["signatures"][0].clone())
    };

    // Nothing stored in the file: indeterminate offline.
    let (code, s) = verify(&[]);
    assert_eq!((code, s["indication"].as_str()), (Some(1), Some("INDETERMINATE")), "{s}");
    // Online: both CRLs fetched over HTTP from where the certificates say.
    let (code, s) = verify(&["--online"]);
    assert_eq!((code, s["indication"].as_str()), (Some(0), Some("TOTAL-PASSED")), "{s}");
    let details = s["details"].to_string();
    assert!(details.contains(&format!("CRL fetched from {crl}")), "{details}");
    assert!(details.contains(&format!("CRL fetched from {root_crl}")), "{details}");
    // Revoked and republished: the online check sees it.
    assert!(
        guichet(&d, &["ca", "revoke", "--dir", "ca", "--serial", "03e8", "--reason", "key-compromise"])
            .status
            .success()
    );
    assert!(guichet(&d, &["ca", "crl", "--dir", "ca", "--out", "issuing.crl"]).status.success());
    let (code, s) = verify(&["--online"]);
    assert_eq!((code, s["sub_indication"].as_str()), (Some(1), Some("REVOKED")), "{s}");
    // The publication point gone: indeterminate, and why.
    std::fs::remove_file(d.join("issuing.crl")).expect("rm");
    let (code, s) = verify(&["--online"]);
    assert_eq!((code, s["indication"].as_str()), (Some(1), Some("INDETERMINATE")), "{s}");
    assert!(s["details"].to_string().contains("404"), "{s}");
}

/// `guichet sign` on a 209 MB PDF of scanned pages: its peak resident
/// memory (the kernel's count, read by Python's resource module) stays a
/// fraction of the file, and the signature validates.
#[test]
fn a_200_mb_pdf_signs_in_a_fraction_of_its_size() {
    let d = workdir("large");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/pades/scanned_pdf.py");
    let made = Command::new("python3").arg(&script).arg(d.join("big.pdf")).arg("100").output().expect("python3");
    assert!(made.status.success(), "{}", text(&made));
    let size = std::fs::metadata(d.join("big.pdf")).expect("big.pdf").len();
    assert!(size > 200_000_000, "{size}");
    assert!(guichet(&d, &["ca", "init", "--dir", "ca", "--organization", "Org"]).status.success());
    assert!(
        guichet(&d, &["ca", "issue", "--dir", "ca", "--name", "A", "--email", "a@x.org", "--out", "a"])
            .status
            .success()
    );
    let probe = "import resource, subprocess, sys\n\
r = subprocess.run(sys.argv[1:], capture_output=True)\n\
print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n\
sys.stderr.write(r.stdout.decode() + r.stderr.decode())\n";
    let out = Command::new("python3")
        .args(["-c", probe, env!("CARGO_BIN_EXE_guichet"), "sign", "big.pdf", "signed.pdf"])
        .args(["--key", "a.key", "--cert", "a.pem", "--chain", "a-chain.pem"])
        .current_dir(&d)
        .output()
        .expect("python3");
    let line = String::from_utf8_lossy(&out.stdout).to_string();
    let mut words = line.split_whitespace();
    let (code, kb): (i32, u64) = (
        words.next().and_then(|w| w.parse().ok()).expect("exit code"),
        words.next().and_then(|w| w.parse().ok()).expect("max RSS"),
    );
    assert_eq!(code, 0, "{}", text(&out));
    eprintln!("guichet sign of {size} bytes: peak RSS {} MB", kb / 1024);
    assert!(kb * 1024 < size / 4, "peak RSS {kb} KB for a {size}-byte file");
    let o = guichet(&d, &["verify", "signed.pdf", "--trust", "ca/root.pem"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&d);
}
