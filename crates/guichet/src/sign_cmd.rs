//! `guichet ca …`, `guichet sign`, `guichet verify`.
//!
//! Exit codes: 0 ok (for `verify`: every signature TOTAL-PASSED), 1 a
//! signature did not pass, 2 usage errors or unreadable input.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use guichet_pades::ca::{self, Employee, IssuingCa};
use guichet_pades::{SignOptions, SoftwareKey};
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Outcome of a command: `Ok(true)` success, `Ok(false)` a failure to
/// report with exit code 1, `Err` exit code 2.
pub fn exit(r: Result<bool>) -> ExitCode {
    match r {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[derive(Subcommand)]
pub enum CaCmd {
    /// Create a root CA and an issuing CA in DIR.
    Init {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        organization: String,
        #[arg(long, default_value = "CA")]
        country: String,
        /// The OCSP responder's URL, named in every certificate issued
        /// (authorityInfoAccess) for `guichet verify --online`.
        #[arg(long)]
        ocsp_url: Option<String>,
        /// Where the issuing CA's CRL (`guichet ca crl`) is published, named
        /// in every certificate issued (cRLDistributionPoints).
        #[arg(long)]
        crl_url: Option<String>,
        /// Where the root's CRL (`guichet ca crl --root`) is published, named
        /// in the issuing CA's certificate.
        #[arg(long)]
        root_crl_url: Option<String>,
    },
    /// Issue an employee's signing certificate and key.
    Issue {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        unit: Option<String>,
        #[arg(long, default_value_t = 730)]
        days: i64,
        /// Writes OUT.pem (certificate), OUT.key (private key), OUT-chain.pem.
        #[arg(long)]
        out: PathBuf,
    },
    /// Renew an employee's certificate: same person, same key, new validity.
    Renew {
        #[arg(long)]
        dir: PathBuf,
        /// The certificate to renew (PEM).
        #[arg(long)]
        cert: PathBuf,
        #[arg(long, default_value_t = 730)]
        days: i64,
        /// Where to write the renewed certificate (PEM).
        #[arg(long)]
        out: PathBuf,
    },
    /// Issue the certificate and key of a timestamp authority (for `guichet tsa serve`).
    IssueTsa {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 1825)]
        days: i64,
        /// Writes OUT.pem, OUT.key, OUT-chain.pem.
        #[arg(long)]
        out: PathBuf,
    },
    /// Write a signed OCSP response about certificates issued by the CA
    /// (good or revoked, as the CA's records say), for B-LT validation data.
    Ocsp {
        #[arg(long)]
        dir: PathBuf,
        /// The certificates to answer for (PEM files).
        #[arg(long, required = true)]
        cert: Vec<PathBuf>,
        #[arg(long)]
        out: PathBuf,
        /// Answer for the issuing CA's own certificate, signed by the root.
        #[arg(long)]
        root: bool,
    },
    /// Revoke a certificate by its serial number (hex).
    Revoke {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        serial: String,
        #[arg(long, value_enum, default_value = "unspecified")]
        reason: RevocationReason,
    },
    /// Write the current certificate revocation list (DER).
    Crl {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 7)]
        days: i64,
        /// The root's CRL (it covers the issuing CA) instead of the issuing CA's.
        #[arg(long)]
        root: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum RevocationReason {
    Unspecified,
    KeyCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct CaState {
    organization: String,
    country: String,
    next_serial: u64,
    crl_number: u64,
    /// (serial hex, unix time, reason)
    revoked: Vec<(String, i64, String)>,
    /// Named in the certificates issued, for validators that check online.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ocsp_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    crl_url: Option<String>,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Lang {
    Fr,
    En,
}

fn parse_visible(s: &str) -> std::result::Result<(usize, [f32; 4]), String> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    let bad = || format!("`{s}`: expected PAGE,X,Y,W,H, like 1,350,50,220,60");
    if parts.len() != 5 {
        return Err(bad());
    }
    let page: usize = parts[0].parse().map_err(|_| bad())?;
    let mut r = [0f32; 4];
    for (i, p) in parts[1..].iter().enumerate() {
        r[i] = p.parse().map_err(|_| bad())?;
    }
    if page == 0 || r.iter().any(|x| !x.is_finite() || *x < 0.0) {
        return Err(bad());
    }
    Ok((page, r))
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Level {
    #[value(name = "B-B")]
    BB,
    #[value(name = "B-T")]
    BT,
    #[value(name = "B-LT")]
    BLt,
    #[value(name = "B-LTA")]
    BLta,
}

#[derive(Args)]
pub struct SignArgs {
    input: PathBuf,
    output: PathBuf,
    /// PKCS#8 private key (PEM or DER).
    #[arg(long, required_unless_present_any = ["pkcs11_module", "p12"], conflicts_with_all = ["pkcs11_module", "p12"])]
    key: Option<PathBuf>,
    /// A PKCS#12 file (.p12/.pfx) holding the key, its certificate and
    /// chain; the password is read from GUICHET_P12_PASSWORD.
    #[arg(long, conflicts_with = "pkcs11_module")]
    p12: Option<PathBuf>,
    /// A PKCS#11 library (HSM, smart card, SoftHSM2); the PIN is read from
    /// the GUICHET_PKCS11_PIN environment variable.
    #[arg(long, requires = "pkcs11_label")]
    pkcs11_module: Option<String>,
    /// The label of the private key on the token.
    #[arg(long)]
    pkcs11_label: Option<String>,
    /// The label of the token (when there are several).
    #[arg(long)]
    pkcs11_token: Option<String>,
    /// The signer's certificate (PEM); from the PKCS#12 file when --p12.
    #[arg(long, required_unless_present = "p12")]
    cert: Option<PathBuf>,
    /// Issuing certificates (PEM, one or more files).
    #[arg(long)]
    chain: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "B-B")]
    level: Level,
    #[arg(long)]
    reason: Option<String>,
    #[arg(long)]
    location: Option<String>,
    /// Sign RSA keys with RSA-PSS rather than PKCS#1 v1.5.
    #[arg(long)]
    pss: bool,
    /// The RFC 3161 timestamp authority (http://…), required for B-T and above.
    #[arg(long)]
    tsa: Option<String>,
    /// CRLs (DER) to store for long-term validation (B-LT, B-LTA).
    #[arg(long)]
    crl: Vec<PathBuf>,
    /// OCSP responses (DER) to store for long-term validation.
    #[arg(long)]
    ocsp: Vec<PathBuf>,
    /// A visible signature: PAGE,X,Y,W,H (points, from the lower-left corner).
    #[arg(long, value_parser = parse_visible)]
    visible: Option<(usize, [f32; 4])>,
    /// A JPEG image drawn in the visible signature (a logo, a handwritten signature).
    #[arg(long, requires = "visible")]
    image: Option<PathBuf>,
    /// Language of the visible signature's text.
    #[arg(long, value_enum, default_value = "fr")]
    lang: Lang,
    /// Certify the document (DocMDP): 1 no change allowed, 2 form filling
    /// and signing (the default with a bare --certify), 3 also annotations.
    #[arg(long, num_args = 0..=1, default_missing_value = "2", value_parser = clap::value_parser!(u8).range(1..=3))]
    certify: Option<u8>,
}

#[derive(Args)]
pub struct TsaServeArgs {
    /// The authority's private key (from `guichet ca issue-tsa`).
    #[arg(long)]
    key: PathBuf,
    #[arg(long)]
    cert: PathBuf,
    #[arg(long)]
    chain: Vec<PathBuf>,
    #[arg(long, default_value = "127.0.0.1:3180")]
    listen: String,
    /// The timestamp policy OID written in every token.
    #[arg(long, default_value = "2.25.41975")]
    policy: String,
}

/// A timestamp authority reached over HTTP (RFC 3161, section 3.4).
pub(crate) struct HttpTsa {
    url: String,
    agent: ureq::Agent,
}

impl HttpTsa {
    pub(crate) fn new(url: &str) -> Result<HttpTsa> {
        if !url.starts_with("http://") {
            bail!(
                "the timestamp authority URL must be http://… (https is not supported yet; the token is signed, so plain HTTP is safe)"
            );
        }
        let agent =
            ureq::Agent::config_builder().timeout_global(Some(std::time::Duration::from_secs(15))).build().into();
        Ok(HttpTsa { url: url.to_owned(), agent })
    }
}

impl guichet_pades::TimestampClient for HttpTsa {
    fn exchange(&self, request: &[u8]) -> Result<Vec<u8>, guichet_pades::Error> {
        let err = |e: String| guichet_pades::Error::Timestamp(format!("{}: {e}", self.url));
        let mut resp = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/timestamp-query")
            .send(request)
            .map_err(|e| err(e.to_string()))?;
        let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        if !ct.starts_with("application/timestamp-reply") {
            return Err(err(format!("unexpected content type `{ct}`")));
        }
        resp.body_mut().with_config().limit(1 << 20).read_to_vec().map_err(|e| err(e.to_string()))
    }
}

/// `guichet tsa serve`: answers timestamp requests over HTTP until stopped.
pub fn tsa_serve(a: &TsaServeArgs) -> Result<bool> {
    let key = SoftwareKey::from_pkcs8(&read(&a.key)?, false).with_context(|| format!("{}", a.key.display()))?;
    let cert = ca::pem_to_der(&read_text(&a.cert)?)?;
    let mut chain = Vec::new();
    for c in &a.chain {
        chain.extend(ca::pem_all(&read_text(c)?)?);
    }
    let tsa = guichet_pades::TimestampAuthority::new(
        Box::new(key),
        cert,
        chain,
        &a.policy,
        Box::new(time::OffsetDateTime::now_utc),
    )?;
    let server =
        tiny_http::Server::http(&a.listen).map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", a.listen))?;
    println!("timestamp authority listening on http://{}/", a.listen);
    for mut req in server.incoming_requests() {
        if *req.method() != tiny_http::Method::Post {
            let _ = req.respond(tiny_http::Response::empty(405));
            continue;
        }
        let mut body = Vec::new();
        use std::io::Read;
        if req.as_reader().take(64 * 1024).read_to_end(&mut body).is_err() {
            let _ = req.respond(tiny_http::Response::empty(400));
            continue;
        }
        let answer = tsa.respond(&body);
        let header = tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"application/timestamp-reply"[..]);
        let resp = tiny_http::Response::from_data(answer);
        let _ = match header {
            Ok(h) => req.respond(resp.with_header(h)),
            Err(()) => req.respond(resp),
        };
    }
    Ok(true)
}

#[derive(Args)]
pub struct VerifyArgs {
    file: PathBuf,
    /// Trust anchors (PEM certificates).
    #[arg(long)]
    trust: Vec<PathBuf>,
    #[arg(long)]
    json: bool,
    /// Require revocation data for every certificate of the path (stored
    /// in the file, B-LT, or fetched with --online): without it the result
    /// is INDETERMINATE.
    #[arg(long)]
    require_revocation: bool,
    /// For certificates the file holds no revocation data about, ask the
    /// OCSP responder or fetch the CRL the certificate names (http, 10 s).
    #[arg(long)]
    online: bool,
}

/// `--online`: OCSP over HTTP POST (RFC 6960 appendix A), CRLs over GET.
struct HttpRevocation {
    agent: ureq::Agent,
}

impl HttpRevocation {
    fn new() -> HttpRevocation {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(std::time::Duration::from_secs(10)))
            .http_status_as_error(true)
            .build()
            .into();
        HttpRevocation { agent }
    }

    fn body(resp: &mut ureq::http::Response<ureq::Body>) -> Result<Vec<u8>, String> {
        resp.body_mut().with_config().limit(16 << 20).read_to_vec().map_err(|e| e.to_string())
    }
}

impl guichet_pades::RevocationFetcher for HttpRevocation {
    fn fetch_crl(&self, url: &str) -> Result<Vec<u8>, String> {
        let mut resp = self.agent.get(url).call().map_err(|e| e.to_string())?;
        Self::body(&mut resp)
    }

    fn ask_ocsp(&self, url: &str, request: &[u8]) -> Result<Vec<u8>, String> {
        let mut resp = self
            .agent
            .post(url)
            .header("Content-Type", "application/ocsp-request")
            .send(request)
            .map_err(|e| e.to_string())?;
        Self::body(&mut resp)
    }
}

fn read(p: &Path) -> Result<Vec<u8>> {
    std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))
}

fn read_text(p: &Path) -> Result<String> {
    std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))
}

/// A signed file in the making: a temporary file next to the output,
/// holding the input and the revisions appended so far; removed unless
/// committed (renamed into place). Each step sees the file's structure
/// image (large streams' contents left out, and never in memory) and
/// reads the file itself for the hash, so a 200 MB document is never held
/// in memory.
struct Staged {
    tmp: PathBuf,
    out: PathBuf,
    file: Option<std::fs::File>,
    structure: Vec<u8>,
}

impl Staged {
    fn copy_of(input: &Path, output: &Path) -> Result<Staged> {
        let mut src = std::fs::File::open(input).with_context(|| format!("cannot read {}", input.display()))?;
        let len = src.metadata().with_context(|| format!("cannot read {}", input.display()))?.len();
        let len = usize::try_from(len).context("the file is too large")?;
        let tmp = tmp_for(output);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        let mut staged = Staged { tmp, out: output.to_owned(), file: Some(file), structure: Vec::new() };
        // One read of the input: copied to the temporary file as the
        // structure image is made (with room for the revisions to come).
        let mut tee = Tee { from: &mut src, to: staged.file()? };
        let structure =
            guichet_pades::structure_image(&mut tee, len, 4 << 20).with_context(|| format!("{}", input.display()))?;
        staged.structure = structure;
        Ok(staged)
    }

    fn file(&self) -> Result<&std::fs::File> {
        self.file.as_ref().context("the output file is closed")
    }

    /// Computes a revision from the file as it stands (its structure, and
    /// a reader of its bytes from the start) and appends it.
    fn append(
        &mut self,
        revision: impl FnOnce(&[u8], &mut dyn std::io::Read) -> Result<Vec<u8>, guichet_pades::Error>,
    ) -> Result<()> {
        let mut reader =
            std::fs::File::open(&self.tmp).with_context(|| format!("cannot read {}", self.tmp.display()))?;
        let update = revision(&self.structure, &mut reader)?;
        let mut w = self.file()?;
        w.seek(std::io::SeekFrom::End(0))?;
        w.write_all(&update).with_context(|| format!("cannot write {}", self.tmp.display()))?;
        self.structure.extend_from_slice(&update);
        Ok(())
    }

    fn commit(mut self) -> Result<()> {
        let f = self.file.take().context("the output file is closed")?;
        f.sync_all().with_context(|| format!("cannot write {}", self.tmp.display()))?;
        drop(f);
        std::fs::rename(&self.tmp, &self.out).with_context(|| format!("cannot write {}", self.out.display()))?;
        Ok(())
    }
}

/// A reader that writes what it reads to `to`.
struct Tee<'a> {
    from: &'a mut std::fs::File,
    to: &'a std::fs::File,
}

impl std::io::Read for Tee<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.from.read(buf)?;
        let mut to = self.to;
        to.write_all(&buf[..n])?;
        Ok(n)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// The temporary file next to `p` that becomes `p` by a rename.
fn tmp_for(p: &Path) -> std::path::PathBuf {
    let dir = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    dir.join(format!(".{name}.{}.tmp", std::process::id()))
}

/// Writes through a temporary file and a rename: never a half-written file.
fn write_atomic(p: &Path, data: &[u8], private: bool) -> Result<()> {
    let tmp = tmp_for(p);
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        if private {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let _ = private;
        let mut f = opts.open(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(data).and_then(|()| f.sync_all()).with_context(|| format!("cannot write {}", tmp.display()))?;
    }
    std::fs::rename(&tmp, p).with_context(|| format!("cannot write {}", p.display()))?;
    Ok(())
}

fn state_path(dir: &Path) -> PathBuf {
    dir.join("ca.json")
}

fn load_state(dir: &Path) -> Result<CaState> {
    let text = read_text(&state_path(dir)).context("is this a CA directory made by `guichet ca init`?")?;
    serde_json::from_str(&text).with_context(|| format!("{} is damaged", state_path(dir).display()))
}

/// The CA's state and its issuing CA, from DIR.
fn issuing_ca(dir: &Path) -> Result<(CaState, IssuingCa)> {
    let st = load_state(dir)?;
    let issuing = IssuingCa::load(&st.organization, &st.country, &read_text(&dir.join("issuing.key"))?)?
        .with_revocation_urls(st.ocsp_url.as_deref(), st.crl_url.as_deref())?;
    Ok((st, issuing))
}

/// Writes OUT.key (readable by its owner only), OUT.pem and OUT-chain.pem
/// (the issuing CA's certificate); returns the path of OUT.pem.
fn write_issued(dir: &Path, out: &Path, issued: &ca::Issued) -> Result<PathBuf> {
    let with = |ext: &str| {
        let mut p = out.as_os_str().to_owned();
        p.push(ext);
        PathBuf::from(p)
    };
    write_atomic(&with(".key"), issued.key_pem.as_bytes(), true)?;
    write_atomic(&with(".pem"), issued.cert_pem.as_bytes(), false)?;
    write_atomic(&with("-chain.pem"), read(&dir.join("issuing.pem"))?.as_slice(), false)?;
    Ok(with(".pem"))
}

fn save_state(dir: &Path, s: &CaState) -> Result<()> {
    write_atomic(&state_path(dir), serde_json::to_string_pretty(s)?.as_bytes(), false)
}

fn reason_of(r: RevocationReason) -> (ca::Reason, &'static str) {
    match r {
        RevocationReason::Unspecified => (ca::Reason::Unspecified, "unspecified"),
        RevocationReason::KeyCompromise => (ca::Reason::KeyCompromise, "keyCompromise"),
        RevocationReason::AffiliationChanged => (ca::Reason::AffiliationChanged, "affiliationChanged"),
        RevocationReason::Superseded => (ca::Reason::Superseded, "superseded"),
        RevocationReason::CessationOfOperation => (ca::Reason::CessationOfOperation, "cessationOfOperation"),
    }
}

pub fn ca(cmd: CaCmd) -> Result<bool> {
    let now = time::OffsetDateTime::now_utc();
    match cmd {
        CaCmd::Init { dir, organization, country, ocsp_url, crl_url, root_crl_url } => {
            for u in ocsp_url.iter().chain(crl_url.iter()).chain(root_crl_url.iter()) {
                ca::check_url(u)?;
            }
            if state_path(&dir).exists() {
                bail!("{} already holds a CA; refusing to overwrite it", dir.display());
            }
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            let files = ca::init_with(&organization, &country, now, root_crl_url.as_deref())?;
            write_atomic(&dir.join("root.pem"), files.root_cert.as_bytes(), false)?;
            write_atomic(&dir.join("root.key"), files.root_key.as_bytes(), true)?;
            write_atomic(&dir.join("issuing.pem"), files.issuing_cert.as_bytes(), false)?;
            write_atomic(&dir.join("issuing.key"), files.issuing_key.as_bytes(), true)?;
            save_state(
                &dir,
                &CaState {
                    organization,
                    country,
                    next_serial: 1000,
                    crl_number: 1,
                    revoked: Vec::new(),
                    ocsp_url,
                    crl_url,
                },
            )?;
            println!("CA created in {}: root.pem (the trust anchor to publish), issuing.pem", dir.display());
            println!("Keep root.key offline; issuing.key signs employees' certificates.");
            Ok(true)
        }
        CaCmd::Issue { dir, name, email, unit, days, out } => {
            let (mut st, issuing) = issuing_ca(&dir)?;
            let e = Employee { name, email, organization: st.organization.clone(), unit };
            let issued = issuing.issue(&e, st.next_serial, now, days)?;
            st.next_serial += 1;
            let cert_file = write_issued(&dir, &out, &issued)?;
            save_state(&dir, &st)?;
            let serial: String = issued.serial.iter().map(|b| format!("{b:02x}")).collect();
            println!("issued certificate {serial} to {}: {}", e.name, cert_file.display());
            Ok(true)
        }
        CaCmd::Renew { dir, cert, days, out } => {
            let (mut st, issuing) = issuing_ca(&dir)?;
            let der = ca::pem_to_der(&read_text(&cert)?).with_context(|| format!("{}", cert.display()))?;
            let renewed = issuing.renew(&der, st.next_serial, now, days)?;
            st.next_serial += 1;
            write_atomic(&out, renewed.cert_pem.as_bytes(), false)?;
            save_state(&dir, &st)?;
            println!("renewed for {days} days: {}", out.display());
            Ok(true)
        }
        CaCmd::IssueTsa { dir, days, out } => {
            let (mut st, issuing) = issuing_ca(&dir)?;
            let issued = issuing.issue_tsa(&st.organization, st.next_serial, now, days)?;
            st.next_serial += 1;
            let cert_file = write_issued(&dir, &out, &issued)?;
            save_state(&dir, &st)?;
            println!("issued the timestamp authority's certificate: {}", cert_file.display());
            Ok(true)
        }
        CaCmd::Ocsp { dir, cert, out, root } => {
            let st = load_state(&dir)?;
            let (issuer_pem, key_file) = if root { ("root.pem", "root.key") } else { ("issuing.pem", "issuing.key") };
            let issuer = ca::pem_to_der(&read_text(&dir.join(issuer_pem))?)?;
            let key = SoftwareKey::from_pkcs8(&read(&dir.join(key_file))?, false)?;
            let mut serials = Vec::new();
            for c in &cert {
                let der = ca::pem_to_der(&read_text(c)?).with_context(|| format!("{}", c.display()))?;
                serials.push(guichet_pades::certificate_serial(&der)?);
            }
            let revoked: Vec<(String, i64)> =
                if root { Vec::new() } else { st.revoked.iter().map(|(s, t, _)| (s.clone(), *t)).collect() };
            let status = |serial: &[u8]| {
                let hex: String = serial.iter().skip_while(|b| **b == 0).map(|b| format!("{b:02x}")).collect();
                match revoked.iter().find(|(s, _)| s.trim_start_matches('0') == hex.trim_start_matches('0')) {
                    Some((_, t)) => guichet_pades::ocsp::Status::Revoked(
                        time::OffsetDateTime::from_unix_timestamp(*t).unwrap_or(now),
                    ),
                    None => guichet_pades::ocsp::Status::Good,
                }
            };
            let resp = guichet_pades::ocsp::respond_for(&issuer, &key, &issuer, &serials, &status, now)?;
            write_atomic(&out, &resp, false)?;
            println!("OCSP response about {} certificate(s): {}", serials.len(), out.display());
            Ok(true)
        }
        CaCmd::Revoke { dir, serial, reason } => {
            let mut st = load_state(&dir)?;
            let serial = serial.trim().trim_start_matches("0x").to_lowercase();
            if serial.is_empty() || !serial.chars().all(|c| c.is_ascii_hexdigit()) {
                bail!("the serial number is hexadecimal, as `guichet ca issue` printed it");
            }
            if st.revoked.iter().any(|(s, _, _)| *s == serial) {
                bail!("certificate {serial} is already revoked");
            }
            st.revoked.push((serial.clone(), now.unix_timestamp(), reason_of(reason).1.to_owned()));
            save_state(&dir, &st)?;
            println!("certificate {serial} revoked; publish a new CRL with `guichet ca crl`");
            Ok(true)
        }
        CaCmd::Crl { dir, out, days, root: true } => {
            let mut st = load_state(&dir)?;
            let root = IssuingCa::load_root(&st.organization, &st.country, &read_text(&dir.join("root.key"))?)?;
            let crl = root.crl(&[], st.crl_number, now, days)?;
            st.crl_number += 1;
            write_atomic(&out, &crl, false)?;
            save_state(&dir, &st)?;
            println!("root CRL number {}: {}", st.crl_number - 1, out.display());
            Ok(true)
        }
        CaCmd::Crl { dir, out, days, root: false } => {
            let (mut st, issuing) = issuing_ca(&dir)?;
            let mut revoked = Vec::new();
            for (s, t, r) in &st.revoked {
                let bytes: Vec<u8> = (0..s.len())
                    .step_by(2)
                    .filter_map(|i| u8::from_str_radix(s.get(i..i + 2).unwrap_or("00"), 16).ok())
                    .collect();
                let reason = match r.as_str() {
                    "keyCompromise" => ca::Reason::KeyCompromise,
                    "affiliationChanged" => ca::Reason::AffiliationChanged,
                    "superseded" => ca::Reason::Superseded,
                    "cessationOfOperation" => ca::Reason::CessationOfOperation,
                    _ => ca::Reason::Unspecified,
                };
                let when = time::OffsetDateTime::from_unix_timestamp(*t).unwrap_or(now);
                revoked.push((bytes, when, reason));
            }
            let crl = issuing.crl(&revoked, st.crl_number, now, days)?;
            st.crl_number += 1;
            write_atomic(&out, &crl, false)?;
            save_state(&dir, &st)?;
            println!("CRL number {} with {} revoked certificates: {}", st.crl_number - 1, revoked.len(), out.display());
            Ok(true)
        }
    }
}

pub fn sign(a: &SignArgs) -> Result<bool> {
    let tsa = match (&a.tsa, a.level) {
        (Some(url), _) => Some(HttpTsa::new(url)?),
        (None, Level::BB) => None,
        (None, _) => bail!("--level B-T, B-LT and B-LTA need --tsa URL (an RFC 3161 timestamp authority)"),
    };
    if matches!(a.level, Level::BLt | Level::BLta) && a.crl.is_empty() && a.ocsp.is_empty() {
        bail!(
            "--level B-LT and B-LTA need the revocation data to store: --crl FILE or --ocsp FILE (for each CA of the chain)"
        );
    }
    let mut chain = Vec::new();
    let p12 = match &a.p12 {
        Some(p) => {
            let password = std::env::var("GUICHET_P12_PASSWORD").unwrap_or_default();
            Some(
                guichet_pades::import_pkcs12(&read(p)?, &password, a.pss)
                    .with_context(|| format!("{}", p.display()))?,
            )
        }
        None => None,
    };
    let cert = match (&a.cert, &p12) {
        (Some(c), _) => ca::pem_to_der(&read_text(c)?).with_context(|| format!("{}", c.display()))?,
        (None, Some(id)) => id.certificate.clone(),
        (None, None) => bail!("give --cert FILE"),
    };
    let key: Box<dyn guichet_pades::Signer> = match (&a.key, &a.pkcs11_module, p12) {
        (_, _, Some(id)) => {
            chain.extend(id.chain);
            Box::new(id.key)
        }
        (Some(k), _, None) => {
            Box::new(SoftwareKey::from_pkcs8(&read(k)?, a.pss).with_context(|| format!("{}", k.display()))?)
        }
        (None, Some(module), None) => {
            let pin = std::env::var("GUICHET_PKCS11_PIN").context("set the token's PIN in GUICHET_PKCS11_PIN")?;
            let spki = guichet_pades::certificate_public_key(&cert)?;
            let label = a.pkcs11_label.as_deref().unwrap_or_default();
            Box::new(guichet_pades::Pkcs11Key::open(module, a.pkcs11_token.as_deref(), &pin, label, &spki)?)
        }
        (None, None, None) => bail!("give --key FILE, --p12 FILE or --pkcs11-module LIB --pkcs11-label LABEL"),
    };
    for c in &a.chain {
        chain.extend(ca::pem_all(&read_text(c)?).with_context(|| format!("{}", c.display()))?);
    }
    let image = match &a.image {
        Some(p) => Some(read(p)?),
        None => None,
    };
    let now = time::OffsetDateTime::now_utc();
    let visible = a.visible.map(|(page, rect)| {
        let name = guichet_pades::certificate_common_name(&cert).unwrap_or_default();
        let date = format!(
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute()
        );
        let mut lines = match a.lang {
            Lang::Fr => vec![format!("Signé numériquement par {name}"), format!("Date : {date}")],
            Lang::En => vec![format!("Digitally signed by {name}"), format!("Date: {date}")],
        };
        if let Some(r) = &a.reason {
            lines.push(match a.lang {
                Lang::Fr => format!("Motif : {r}"),
                Lang::En => format!("Reason: {r}"),
            });
        }
        guichet_pades::Visible { page, rect, lines, image: image.as_deref() }
    });
    // The output is built in a temporary file next to it: the input copied
    // while its structure is read (once the key and certificates loaded,
    // so a wrong password costs no copy), then each new revision appended;
    // renamed at the end.
    let mut staged = Staged::copy_of(&a.input, &a.output)?;
    let opts = SignOptions {
        signer: key.as_ref(),
        certificate: &cert,
        chain: &chain,
        signing_time: Some(now),
        reason: a.reason.as_deref(),
        location: a.location.as_deref(),
        name: None,
        timestamp: tsa.as_ref().map(|t| t as &dyn guichet_pades::TimestampClient),
        certify: a.certify,
        visible,
    };
    staged
        .append(|pdf, file| guichet_pades::sign_pdf_update_from(pdf, file, &opts))
        .with_context(|| format!("{}", a.input.display()))?;
    if matches!(a.level, Level::BLt | Level::BLta) {
        let mut crls = Vec::new();
        for c in &a.crl {
            crls.push(read(c)?);
        }
        let mut ocsps = Vec::new();
        for o in &a.ocsp {
            ocsps.push(read(o)?);
        }
        let data = guichet_pades::ValidationData { certs: chain.clone(), crls, ocsps };
        staged.append(|pdf, _| guichet_pades::add_dss_update(pdf, &data))?;
    }
    if a.level == Level::BLta
        && let Some(t) = &tsa
    {
        staged.append(|pdf, file| guichet_pades::timestamp_pdf_update_from(pdf, file, t))?;
    }
    staged.commit()?;
    let level = match a.level {
        Level::BB if tsa.is_some() => "B-T",
        Level::BB => "B-B",
        Level::BT => "B-T",
        Level::BLt => "B-LT",
        Level::BLta => "B-LTA",
    };
    println!("signed {} → {} (PAdES {level}, {})", a.input.display(), a.output.display(), key.algorithm().name());
    Ok(true)
}

pub fn verify(a: &VerifyArgs) -> Result<bool> {
    let pdf = read(&a.file)?;
    let mut trust = Vec::new();
    for t in &a.trust {
        trust.extend(ca::pem_all(&read_text(t)?).with_context(|| format!("{}", t.display()))?);
    }
    let http = HttpRevocation::new();
    let options = guichet_pades::VerifyOptions {
        require_revocation: a.require_revocation,
        online: a.online.then_some(&http as &dyn guichet_pades::RevocationFetcher),
    };
    let report = guichet_pades::verify_pdf_with(&pdf, &trust, time::OffsetDateTime::now_utc(), &options)
        .with_context(|| format!("{}", a.file.display()))?;
    if a.json {
        let sigs: Vec<serde_json::Value> = report
            .signatures
            .iter()
            .map(|s| {
                serde_json::json!({
                    "field": s.field,
                    "indication": s.indication.as_str(),
                    "sub_indication": s.sub_indication,
                    "signer": s.signer,
                    "level": s.level,
                    "byte_range": s.byte_range,
                    "modification": s.modification.as_str(),
                    "details": s.details,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "file": a.file.display().to_string(), "signatures": sigs })
            )?
        );
    } else {
        if report.signatures.is_empty() {
            println!("{}: no signature", a.file.display());
        }
        for s in &report.signatures {
            println!(
                "{}: {}{}",
                s.field,
                s.indication.as_str(),
                s.sub_indication.map(|x| format!(" ({x})")).unwrap_or_default()
            );
            if let Some(n) = &s.signer {
                println!("  signer: {n}");
            }
            if let Some(l) = s.level {
                println!("  level: {l}");
            }
            for d in &s.details {
                println!("  {d}");
            }
        }
    }
    Ok(report.all_passed())
}
