//! Notifications: the texts of every email in French and English (Fluent
//! files `locales/mail.*.ftl`, so a translator edits words, not code), and
//! their queuing with an idempotency key, so a job that runs twice (a
//! retry, a restart) never queues the same notice twice.

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource};
use std::sync::OnceLock;

use crate::{App, Result};

const FR: &str = include_str!("../locales/mail.fr.ftl");
const EN: &str = include_str!("../locales/mail.en.ftl");

/// Every kind of email guichet sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    AccountVerification,
    ApplicationReceived,
    InformationRequested,
    DecisionApproved,
    DecisionRefused,
    AgreementToSign,
    SigningReminder,
    PaymentSent,
    RepaymentReminder,
}

impl Notice {
    pub const ALL: [Notice; 9] = [
        Notice::AccountVerification,
        Notice::ApplicationReceived,
        Notice::InformationRequested,
        Notice::DecisionApproved,
        Notice::DecisionRefused,
        Notice::AgreementToSign,
        Notice::SigningReminder,
        Notice::PaymentSent,
        Notice::RepaymentReminder,
    ];

    fn id(self) -> &'static str {
        match self {
            Notice::AccountVerification => "account-verification",
            Notice::ApplicationReceived => "application-received",
            Notice::InformationRequested => "information-requested",
            Notice::DecisionApproved => "decision-approved",
            Notice::DecisionRefused => "decision-refused",
            Notice::AgreementToSign => "agreement-to-sign",
            Notice::SigningReminder => "signing-reminder",
            Notice::PaymentSent => "payment-sent",
            Notice::RepaymentReminder => "repayment-reminder",
        }
    }
}

struct Bundles {
    fr: FluentBundle<FluentResource>,
    en: FluentBundle<FluentResource>,
}

/// A Fluent bundle of one file of ours, for plain text (no Unicode
/// isolation marks around variables); the screens' texts use it too.
pub fn fluent_bundle(lang: &str, src: &str) -> FluentBundle<FluentResource> {
    let id: unic_langid::LanguageIdentifier = lang.parse().unwrap_or_default();
    let mut b = FluentBundle::new_concurrent(vec![id]);
    b.set_use_isolating(false);
    // The files are part of the binary and tested: a broken entry shows as
    // its key, never as a crash.
    let res = FluentResource::try_new(src.to_owned()).unwrap_or_else(|(partial, _)| partial);
    let _ = b.add_resource(res);
    b
}

fn bundles() -> &'static Bundles {
    static B: OnceLock<Bundles> = OnceLock::new();
    B.get_or_init(|| Bundles { fr: fluent_bundle("fr", FR), en: fluent_bundle("en", EN) })
}

/// (subject, body) of a notice in `lang` (`en`, else French).
pub fn render(notice: Notice, lang: &str, args: &[(&str, String)]) -> (String, String) {
    let b = if lang == "en" { &bundles().en } else { &bundles().fr };
    let mut fa = FluentArgs::new();
    for (k, v) in args {
        fa.set(*k, v.clone());
    }
    let text = |suffix: &str| {
        let id = format!("{}-{suffix}", notice.id());
        let Some(pattern) = b.get_message(&id).and_then(|m| m.value()) else { return id };
        let mut errors = Vec::new();
        let s = b.format_pattern(pattern, Some(&fa), &mut errors).into_owned();
        if !errors.is_empty() {
            tracing::warn!(message = %id, ?errors, "mail template");
        }
        s
    };
    (text("subject"), text("body") + "\n")
}

impl App {
    /// Queues a notice once per `key` (a retry or a second run is a no-op).
    /// `dossier` files it in that dossier's delivery log.
    pub(crate) async fn notify(
        &self,
        key: &str,
        dossier: Option<&str>,
        to: &str,
        lang: &str,
        notice: Notice,
        args: &[(&str, String)],
    ) -> Result<bool> {
        if to.is_empty() {
            return Ok(false);
        }
        let (subject, body) = render(notice, lang, args);
        Ok(self.store.queue_mail_once(key, dossier, to, &subject, &body, self.now()).await?)
    }

    /// Tells a dossier's applicant what just happened to it. A failure is
    /// logged, never the use case's: the change is already committed.
    pub(crate) async fn notify_applicant(
        &self,
        view: &crate::DossierView,
        notice: Notice,
        extra: Vec<(&'static str, String)>,
    ) {
        if let Err(e) = self.try_notify_applicant(view, notice, extra).await {
            tracing::warn!(dossier = %view.id, error = %e, "notice not queued");
        }
    }

    async fn try_notify_applicant(
        &self,
        view: &crate::DossierView,
        notice: Notice,
        extra: Vec<(&'static str, String)>,
    ) -> Result<()> {
        let Some(user) = self.store.user(&view.applicant).await? else { return Ok(()) };
        let p = self.program_version(&view.program, &view.program_version, None).await?;
        let lang = if user.language == "en" { "en" } else { "fr" };
        let rl = if lang == "en" { guichet_rules::Lang::En } else { guichet_rules::Lang::Fr };
        let mut args = vec![
            ("name", user.name.clone()),
            ("program", p.program.title.get(rl).to_owned()),
            ("dossier", view.id.clone()),
            ("link", format!("{}/demandes/{}", self.config.base_url, view.id)),
        ];
        let key = match notice {
            Notice::ApplicationReceived => format!("application-received:{}", view.id),
            Notice::InformationRequested => {
                for (k, v) in extra {
                    // The due date comes as a timestamp, written in the reader's language.
                    let v = match (k, v.parse::<i64>()) {
                        ("due", Ok(t)) => Self::date_text(self.local_date(t)?, lang),
                        _ => v,
                    };
                    args.push((k, v));
                }
                format!("information-requested:{}:{}", view.id, view.version)
            }
            Notice::DecisionApproved | Notice::DecisionRefused => {
                args.push(("amount", Self::money_text(view.amount.unwrap_or(0), lang)));
                format!("decision:{}:{}", view.id, view.version)
            }
            other => format!("{}:{}:{}", other.id(), view.id, view.version),
        };
        self.notify(&key, Some(&view.id), &user.email, lang, notice, &args).await?;
        Ok(())
    }

    /// The decision notice, if the dossier was just decided.
    pub(crate) async fn notify_decision(&self, view: &crate::DossierView) {
        match view.state {
            guichet_core::State::Approved | guichet_core::State::AgreementPending => {
                self.notify_applicant(view, Notice::DecisionApproved, vec![]).await
            }
            guichet_core::State::Refused => self.notify_applicant(view, Notice::DecisionRefused, vec![]).await,
            _ => {}
        }
    }

    /// The demo's mailbox: the caller's own mail, newest first (only when
    /// mail goes to a folder, never with real SMTP).
    pub async fn my_mails(&self, by: &crate::Caller) -> Result<Vec<(String, String, i64)>> {
        if !self.config.mailbox {
            return Err(crate::AppError::NotFound);
        }
        Ok(self.store.mails_to(&by.user.email, 100).await?)
    }

    /// Money as the reader's language writes it.
    pub(crate) fn money_text(cents: i64, lang: &str) -> String {
        let m = guichet_rules::Money(cents);
        if lang == "en" { m.to_en() } else { m.to_fr() }
    }

    /// A date as the reader's language writes it.
    pub(crate) fn date_text(d: jiff::civil::Date, lang: &str) -> String {
        let d = guichet_rules::Date::from_civil(d);
        if lang == "en" { d.to_en() } else { d.to_fr() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every notice exists in both languages, uses every variable it is
    /// given and asks for none it is not.
    #[test]
    fn every_notice_renders_in_both_languages() {
        let args: Vec<(&str, String)> = [
            "name",
            "link",
            "program",
            "dossier",
            "message",
            "due",
            "amount",
            "title",
            "until",
            "payee",
            "date",
            "reference",
            "balance",
        ]
        .iter()
        .map(|k| (*k, format!("<{k}>")))
        .collect();
        for n in Notice::ALL {
            let (sfr, bfr) = render(n, "fr", &args);
            let (sen, ben) = render(n, "en", &args);
            for (s, b) in [(&sfr, &bfr), (&sen, &ben)] {
                assert!(!s.ends_with("-subject") && !b.starts_with(n.id()), "{n:?} is missing");
                assert!(!s.contains('{') && !b.contains('{'), "{n:?}: unfilled variable in {s} / {b}");
                assert!(!b.contains("Unknown"), "{n:?}: {b}");
            }
            assert_ne!(sfr, sen, "{n:?} has the same subject in both languages");
            // The same variables in both languages.
            let used = |t: &str| args.iter().filter(|(k, _)| t.contains(&format!("<{k}>"))).count();
            assert_eq!(used(&(sfr.clone() + &bfr)), used(&(sen.clone() + &ben)), "{n:?}");
        }
        let (s, b) = render(Notice::PaymentSent, "fr", &[("name", "Camille".into()), ("amount", "1 500,00 $".into())]);
        assert!(s.starts_with("Paiement envoyé"));
        assert!(b.starts_with("Bonjour Camille,\n\nUn paiement de 1 500,00 $"), "{b}");
    }
}
