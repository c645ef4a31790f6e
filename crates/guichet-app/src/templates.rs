//! Templates for repeated contracts: a Typst document whose merge fields
//! come from data (never spliced into its code), the signers' places and
//! order; sending one envelope from it, or one per row of a CSV file
//! (bulk send: every row is checked before anything is sent).

use guichet_core::{Envelope, NewEnvelope, Party, Recipient, UserId};
use guichet_store::EnvelopeWrite;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

use crate::agreements::FieldInput;
use crate::{App, AppError, Caller, EnvelopeView, Result};

/// Most rows a bulk send takes.
const MAX_ROWS: usize = 20_000;
/// Envelopes written per transaction in a bulk send.
const BATCH: usize = 250;

/// A signer's place in a template.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateSigner {
    /// "Le locataire", "Pour la Société".
    pub label: String,
    /// `employee`, `officer`, `citizen`, `external`.
    pub kind: String,
    #[serde(default = "first_group")]
    pub group: u32,
    #[serde(default)]
    pub field: Option<FieldInput>,
}

fn first_group() -> u32 {
    1
}

/// A template as its author writes it.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateInput {
    pub name: String,
    /// `fr` (default) or `en`.
    #[serde(default)]
    pub lang: Option<String>,
    /// The envelope's title; `{field}` is replaced by the field's value.
    pub title: String,
    /// Typst markup. It reads its values with `#let d = json("data.json")`:
    /// `d.fields.NAME`, `d.signers` (`label`, `name`), `d.organization`,
    /// `d.date`. The document's language and date are set for it.
    pub source: String,
    /// The merge fields' names (lowercase letters, digits, `_`).
    pub fields: Vec<String>,
    pub signers: Vec<TemplateSigner>,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub expires_in_days: Option<i64>,
}

/// A template as the API shows it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TemplateView {
    pub id: String,
    pub owner: String,
    pub created_at: i64,
    pub definition: TemplateInput,
    /// The columns a bulk-send CSV file needs.
    pub csv_header: Vec<String>,
}

/// Where to send one envelope from a template.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateSend {
    #[serde(default)]
    pub values: BTreeMap<String, String>,
    /// One per signer place, in order (ignored for `officer` places).
    #[serde(default)]
    pub signers: Vec<SignerAddress>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignerAddress {
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// What a bulk send did.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct BulkReport {
    pub sent: usize,
    pub envelopes: Vec<String>,
}

fn is_field_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_lowercase())
        && s.len() <= 40
        && c.all(|x| x.is_ascii_lowercase() || x.is_ascii_digit() || x == '_')
}

/// Set for every template: its language and date, from the data.
const PREAMBLE: &str = "#let __guichet = json(\"data.json\")\n\
#set document(title: __guichet.title, author: __guichet.organization, \
date: datetime(year: __guichet.issued.at(0), month: __guichet.issued.at(1), day: __guichet.issued.at(2)))\n\
#set text(lang: __guichet.lang)\n";

fn invalid(m: impl Into<String>) -> AppError {
    AppError::invalid("invalid_template", m)
}

impl TemplateInput {
    fn lang(&self) -> &str {
        match self.lang.as_deref() {
            Some("en") => "en",
            _ => "fr",
        }
    }

    fn check(&self) -> Result<()> {
        if self.name.trim().is_empty() || self.title.trim().is_empty() {
            return Err(invalid("a template needs a name and a title"));
        }
        if !matches!(self.lang.as_deref(), None | Some("fr") | Some("en")) {
            return Err(invalid("the language is fr or en"));
        }
        if self.source.len() > 200_000 {
            return Err(invalid("the template's source is larger than 200 KB"));
        }
        if self.fields.len() > 50 {
            return Err(invalid("a template has at most 50 merge fields"));
        }
        for (i, f) in self.fields.iter().enumerate() {
            if !is_field_name(f) {
                return Err(invalid(format!("{f:?}: a field name is lowercase letters, digits and _")));
            }
            if self.fields[..i].contains(f) {
                return Err(invalid(format!("the field {f:?} is named twice")));
            }
        }
        if self.signers.is_empty() || self.signers.len() > 20 {
            return Err(invalid("a template has 1 to 20 signers"));
        }
        for s in &self.signers {
            if !matches!(s.kind.as_str(), "employee" | "officer" | "citizen" | "external") {
                return Err(invalid(format!(
                    "signer kind is employee, officer, citizen or external, not {:?}",
                    s.kind
                )));
            }
            if s.label.trim().is_empty() || s.group == 0 {
                return Err(invalid("every signer has a label and a group from 1"));
            }
        }
        if !(1..=365).contains(&self.expires_in_days.unwrap_or(30)) {
            return Err(invalid("an envelope expires in 1 to 365 days"));
        }
        Ok(())
    }

    /// The CSV columns a bulk send needs.
    fn csv_header(&self) -> Vec<String> {
        let mut h = self.fields.clone();
        for (i, s) in self.signers.iter().enumerate() {
            if s.kind != "officer" {
                h.push(format!("signer{}_email", i + 1));
                h.push(format!("signer{}_name", i + 1));
            }
        }
        h
    }

    fn title_for(&self, values: &BTreeMap<String, String>) -> String {
        let mut t = self.title.clone();
        for (k, v) in values {
            t = t.replace(&format!("{{{k}}}"), v);
        }
        t
    }
}

fn template_view(id: String, owner: String, json: &str, created_at: i64) -> Result<TemplateView> {
    let definition: TemplateInput =
        serde_json::from_str(json).map_err(|e| AppError::Internal(format!("template {id}: {e}")))?;
    Ok(TemplateView { id, owner, created_at, csv_header: definition.csv_header(), definition })
}

/// Everything one envelope needs, resolved and checked.
struct Prepared {
    title: String,
    data: serde_json::Value,
    recipients: Vec<Recipient>,
}

impl App {
    fn template_data(
        &self,
        def: &TemplateInput,
        org: &str,
        title: &str,
        values: &BTreeMap<String, String>,
        names: &[String],
    ) -> Result<serde_json::Value> {
        let date = self.today()?;
        let c = date.to_civil();
        let fields: serde_json::Map<String, serde_json::Value> =
            def.fields.iter().map(|f| (f.clone(), values.get(f).cloned().unwrap_or_default().into())).collect();
        Ok(serde_json::json!({
            "lang": def.lang(),
            "organization": org,
            "title": title,
            "date": if def.lang() == "en" { date.to_en() } else { date.to_fr() },
            "issued": [i32::from(c.year()), i32::from(c.month()), i32::from(c.day())],
            "fields": fields,
            "signers": def.signers.iter().zip(names).map(|(s, n)| serde_json::json!({"label": s.label, "name": n})).collect::<Vec<_>>(),
        }))
    }

    /// Saves a template once it renders (with each field's name as value).
    pub async fn create_template(&self, caller: &Caller, def: TemplateInput) -> Result<TemplateView> {
        if !caller.is_staff() {
            return Err(AppError::Forbidden("templates are made by employees".into()));
        }
        def.check()?;
        let org = self.org_settings().await?.name;
        let sample: BTreeMap<String, String> = def.fields.iter().map(|f| (f.clone(), format!("«{f}»"))).collect();
        let names: Vec<String> = def.signers.iter().map(|s| s.label.clone()).collect();
        let data = self.template_data(&def, &org, &def.title_for(&sample), &sample, &names)?;
        let source = format!("{PREAMBLE}{}", def.source);
        tokio::task::spawn_blocking(move || crate::docs().render(&source, &data))
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?
            .map_err(|e| invalid(format!("the template does not render: {e}")))?;
        let id = guichet_store::new_id("t_")?;
        let json = serde_json::to_string(&def).map_err(|e| AppError::Internal(e.to_string()))?;
        let now = self.now();
        self.store.put_template(&id, caller.id(), def.name.trim(), &json, now).await?;
        Ok(TemplateView {
            id,
            owner: caller.id().into(),
            created_at: now,
            csv_header: def.csv_header(),
            definition: def,
        })
    }

    pub async fn templates(&self, caller: &Caller) -> Result<Vec<TemplateView>> {
        if !caller.is_staff() {
            return Err(AppError::Forbidden("templates are for employees".into()));
        }
        self.store
            .templates()
            .await?
            .into_iter()
            .map(|(id, owner, json, created_at)| template_view(id, owner, &json, created_at))
            .collect()
    }

    pub async fn template(&self, caller: &Caller, id: &str) -> Result<TemplateView> {
        if !caller.is_staff() {
            return Err(AppError::Forbidden("templates are for employees".into()));
        }
        let (owner, _, json, created_at) = self.store.template(id).await?.ok_or(AppError::NotFound)?;
        template_view(id.into(), owner, &json, created_at)
    }

    /// Resolves one envelope's signers and values (`line` names the CSV
    /// line in errors).
    async fn prepare(
        &self,
        def: &TemplateInput,
        org: &str,
        values: BTreeMap<String, String>,
        addresses: &[SignerAddress],
        accounts: &mut HashMap<String, Option<guichet_store::UserRow>>,
        line: Option<usize>,
    ) -> Result<Prepared> {
        let at = |m: String| match line {
            Some(l) => format!("line {l}: {m}"),
            None => m,
        };
        let mut recipients = Vec::with_capacity(def.signers.len());
        for (i, s) in def.signers.iter().enumerate() {
            let address = addresses.get(i);
            let email = address.map(|a| a.email.trim().to_lowercase()).unwrap_or_default();
            let given = address.and_then(|a| a.name.clone()).filter(|n| !n.trim().is_empty());
            let party_and_name = match s.kind.as_str() {
                "officer" => (Party::Officer, given.unwrap_or_else(|| s.label.clone())),
                "external" => {
                    guichet_core::Email::parse(&email)
                        .map_err(|e| invalid(at(format!("signer {} ({}): {e}", i + 1, s.label))))?;
                    (Party::External, given.unwrap_or_else(|| email.clone()))
                }
                kind => {
                    if !accounts.contains_key(&email) {
                        let u = self.store.user_by_email(&email).await?.filter(|u| u.active);
                        accounts.insert(email.clone(), u);
                    }
                    let u = accounts.get(&email).cloned().flatten().ok_or_else(|| {
                        invalid(at(format!("signer {} ({}): no active account for {email:?}", i + 1, s.label)))
                    })?;
                    let employee = u.roles.iter().any(|r| r != "citizen");
                    if kind == "employee" && !employee {
                        return Err(invalid(at(format!(
                            "signer {} ({}): {email:?} is not an employee",
                            i + 1,
                            s.label
                        ))));
                    }
                    let party = if kind == "employee" {
                        Party::Employee { user: UserId(u.id.clone()) }
                    } else {
                        Party::Citizen { user: UserId(u.id.clone()) }
                    };
                    (party, given.unwrap_or(u.name.clone()))
                }
            };
            let (party, name) = party_and_name;
            recipients.push(Recipient {
                name,
                email: if party == Party::Officer { String::new() } else { email },
                party,
                group: s.group,
                field: s.field.map(|f| guichet_core::Field { page: f.page, rect: f.rect }),
            });
        }
        for k in values.keys() {
            if !def.fields.contains(k) {
                return Err(invalid(at(format!("{k:?} is not a field of this template"))));
            }
        }
        let title = def.title_for(&values);
        let names: Vec<String> = recipients.iter().map(|r| r.name.clone()).collect();
        let data = self.template_data(def, org, &title, &values, &names)?;
        Ok(Prepared { title, data, recipients })
    }

    fn envelope_of(
        &self,
        def: &TemplateInput,
        p: Prepared,
        sha: String,
        by: &Caller,
        now: i64,
    ) -> Result<(String, EnvelopeWrite)> {
        let sent = Envelope::send(
            NewEnvelope {
                title: p.title,
                message: def.message.clone(),
                lang: def.lang().into(),
                document_sha256: sha,
                recipients: p.recipients,
                expires_at: now + def.expires_in_days.unwrap_or(30) * 86_400,
                dossier: None,
            },
            &UserId(by.id().into()),
            now,
        )?;
        let after = Envelope::replay(std::slice::from_ref(&sent))?;
        let id = guichet_store::new_id("e_")?;
        let w = EnvelopeWrite {
            id: id.clone(),
            expected_version: 0,
            events: vec![sent],
            actor: Some(by.id().into()),
            after,
            at: now,
        };
        Ok((id, w))
    }

    /// One envelope from a template.
    pub async fn send_template(&self, caller: &Caller, id: &str, send: TemplateSend) -> Result<EnvelopeView> {
        let t = self.template(caller, id).await?;
        let org = self.org_settings().await?.name;
        let p = self.prepare(&t.definition, &org, send.values, &send.signers, &mut HashMap::new(), None).await?;
        let source = format!("{PREAMBLE}{}", t.definition.source);
        let data = p.data.clone();
        let pdf = tokio::task::spawn_blocking(move || crate::docs().render(&source, &data))
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?
            .map_err(|e| invalid(format!("the template does not render: {e}")))?;
        let now = self.now();
        let blob = self.store.put_blob(pdf, "application/pdf", now).await?;
        let (eid, w) = self.envelope_of(&t.definition, p, blob.sha256, caller, now)?;
        let after = w.after.clone();
        let version = self.store.write_envelope(w, None).await?;
        self.notify_turn(&eid, &[], &after, now).await?;
        Ok(EnvelopeView::of(&eid, version, &after, Some(caller)))
    }

    /// One envelope per row of a CSV file (its header: `csv_header`).
    /// Every row is checked first; any error, and nothing is sent.
    pub async fn bulk_send(&self, caller: &Caller, id: &str, csv: &[u8]) -> Result<BulkReport> {
        let t = self.template(caller, id).await?;
        let def = t.definition;
        let mut reader = csv::ReaderBuilder::new().flexible(false).trim(csv::Trim::All).from_reader(csv);
        let header: Vec<String> = reader
            .headers()
            .map_err(|e| AppError::invalid("invalid_csv", format!("the CSV header: {e}")))?
            .iter()
            .map(str::to_owned)
            .collect();
        let missing: Vec<&String> =
            t.csv_header.iter().filter(|c| !c.ends_with("_name") && !header.contains(c)).collect();
        if !missing.is_empty() {
            return Err(AppError::invalid("invalid_csv", format!("the CSV lacks the columns {missing:?}")));
        }
        let org = self.org_settings().await?.name;
        let mut accounts = HashMap::new();
        let mut prepared = Vec::new();
        let mut errors = Vec::new();
        for (n, record) in reader.records().enumerate() {
            let line = n + 2;
            if n >= MAX_ROWS {
                return Err(AppError::invalid("invalid_csv", format!("at most {MAX_ROWS} rows per file")));
            }
            let record = match record {
                Ok(r) => r,
                Err(e) => {
                    errors.push(format!("line {line}: {e}"));
                    continue;
                }
            };
            let cell =
                |c: &str| header.iter().position(|h| h == c).and_then(|i| record.get(i)).unwrap_or("").to_owned();
            let values: BTreeMap<String, String> = def.fields.iter().map(|f| (f.clone(), cell(f))).collect();
            let addresses: Vec<SignerAddress> = (1..=def.signers.len())
                .map(|i| SignerAddress {
                    email: cell(&format!("signer{i}_email")),
                    name: Some(cell(&format!("signer{i}_name"))),
                })
                .collect();
            match self.prepare(&def, &org, values, &addresses, &mut accounts, Some(line)).await {
                Ok(p) => prepared.push(p),
                Err(AppError::Invalid { message, .. }) => errors.push(message),
                Err(e) => return Err(e),
            }
            if errors.len() >= 50 {
                break;
            }
        }
        if !errors.is_empty() {
            return Err(AppError::Invalid {
                code: "invalid_csv",
                message: format!("{} row(s) cannot be sent; nothing was sent", errors.len()),
                field: None,
                details: Some(serde_json::json!(errors)),
            });
        }
        if prepared.is_empty() {
            return Err(AppError::invalid("invalid_csv", "the CSV has no rows"));
        }
        // Render on every core, write a batch at a time.
        let source = std::sync::Arc::new(format!("{PREAMBLE}{}", def.source));
        let now = self.now();
        let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let mut ids = Vec::with_capacity(prepared.len());
        let mut rows = prepared.into_iter();
        loop {
            let batch: Vec<Prepared> = rows.by_ref().take(BATCH).collect();
            if batch.is_empty() {
                break;
            }
            let data: Vec<serde_json::Value> = batch.iter().map(|p| p.data.clone()).collect();
            let per = data.len().div_ceil(workers);
            let mut tasks = Vec::new();
            for chunk in data.chunks(per.max(1)) {
                let chunk = chunk.to_vec();
                let source = source.clone();
                tasks.push(tokio::task::spawn_blocking(move || {
                    chunk.iter().map(|d| crate::docs().render(&source, d)).collect::<Vec<_>>()
                }));
            }
            let mut pdfs = Vec::with_capacity(batch.len());
            for t in tasks {
                for r in t.await.map_err(|e| AppError::Internal(e.to_string()))? {
                    pdfs.push(r.map_err(|e| invalid(format!("the template does not render: {e}")))?);
                }
            }
            let mut writes = Vec::with_capacity(batch.len());
            let mut mails = Vec::new();
            for (p, pdf) in batch.into_iter().zip(pdfs) {
                let blob = self.store.put_blob(pdf, "application/pdf", now).await?;
                let (eid, w) = self.envelope_of(&def, p, blob.sha256, caller, now)?;
                mails.extend(self.turn_mails(&eid, &[], &w.after).await?);
                ids.push(eid);
                writes.push(w);
            }
            self.store.write_envelopes(writes, mails, now).await?;
        }
        Ok(BulkReport { sent: ids.len(), envelopes: ids })
    }
}
