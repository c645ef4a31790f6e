//! The program file as written: serde structures over TOML, with spans.
//!
//! Nothing here is validated beyond TOML shapes; `compile` turns a
//! `RawProgram` into a checked `Program`.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

/// A text in French and English. Both are required: French is the default
/// language, English is offered where the organization allows it.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq, Eq, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Bilingual {
    pub fr: String,
    pub en: String,
}

impl Bilingual {
    pub fn get(&self, lang: crate::Lang) -> &str {
        match lang {
            crate::Lang::Fr => &self.fr,
            crate::Lang::En => &self.en,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// A case worker reviews and decides every application.
    Human,
    /// The outcome of the rules is the decision (Quebec's privacy law,
    /// section 65.2, then requires telling the person so).
    Automatic,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawProgram {
    /// Stable identifier: lowercase letters, digits and dashes.
    #[schemars(with = "String")]
    pub id: Spanned<String>,
    pub title: Bilingual,
    #[serde(default)]
    pub summary: Option<Bilingual>,
    #[serde(default)]
    pub organization: Option<String>,
    /// First day applications are accepted.
    #[schemars(with = "String")]
    pub opens: Spanned<toml::value::Datetime>,
    /// Last day applications are accepted (inclusive).
    #[schemars(with = "String")]
    pub closes: Spanned<toml::value::Datetime>,
    pub decision: Decision,
    /// Parameters with effective dates: `cap = { 2020-04-01 = "1500.00 $" }`,
    /// or a table with `label` and `values`.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, serde_json::Value>")]
    pub parameters: IndexMap<String, Spanned<toml::Value>>,
    #[serde(default)]
    pub sections: IndexMap<String, RawSection>,
    #[serde(default)]
    #[schemars(with = "IndexMap<String, RawQuestion>")]
    pub questions: IndexMap<String, Spanned<RawQuestion>>,
    #[serde(default)]
    #[schemars(with = "IndexMap<String, RawDerived>")]
    pub derived: IndexMap<String, Spanned<RawDerived>>,
    #[serde(default)]
    #[schemars(with = "IndexMap<String, RawRule>")]
    pub rules: IndexMap<String, Spanned<RawRule>>,
    #[serde(default)]
    pub amount: Option<RawAmount>,
    #[serde(default)]
    #[schemars(with = "Option<RawPayee>")]
    pub payee: Option<Spanned<RawPayee>>,
    #[serde(default)]
    #[schemars(with = "Option<RawAgreement>")]
    pub agreement: Option<Spanned<RawAgreement>>,
    #[serde(default)]
    pub test_defaults: Option<RawTestDefaults>,
    #[serde(default)]
    #[schemars(with = "Vec<RawTest>")]
    pub tests: Vec<Spanned<RawTest>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSection {
    pub title: Bilingual,
    #[serde(default)]
    pub help: Option<Bilingual>,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QuestionType {
    Text,
    YesNo,
    Integer,
    Money,
    Date,
    Choice,
    Address,
    File,
    BankAccount,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawQuestion {
    #[serde(rename = "type")]
    pub kind: QuestionType,
    pub label: Bilingual,
    #[serde(default)]
    pub help: Option<Bilingual>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub section: Option<Spanned<String>>,
    /// Asked only when this condition holds (it may use earlier questions).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub ask_if: Option<Spanned<String>>,
    /// May be left blank even when asked.
    #[serde(default)]
    pub optional: bool,
    /// Asked for the case worker's information: no rule is expected to
    /// read it (silences the "no rule uses it" warning).
    #[serde(default)]
    pub informational: bool,
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Value>")]
    pub min: Option<Spanned<toml::Value>>,
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Value>")]
    pub max: Option<Spanned<toml::Value>>,
    #[serde(default)]
    pub options: Vec<RawOption>,
    /// Media types accepted for a file.
    #[serde(default)]
    pub accept: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawOption {
    pub value: String,
    pub label: Bilingual,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDerived {
    pub label: Bilingual,
    #[schemars(with = "String")]
    pub value: Spanned<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// What the rule checks, in a few words.
    pub label: Bilingual,
    /// The condition that must hold.
    #[schemars(with = "String")]
    pub when: Spanned<String>,
    /// The reason shown when the condition does not hold.
    pub fails: Bilingual,
    /// Reference to the program norm (article, section).
    #[serde(default)]
    pub norm: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAmount {
    pub label: Bilingual,
    #[schemars(with = "String")]
    pub value: Spanned<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PayeeKind {
    Applicant,
    ThirdParty,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPayee {
    pub kind: PayeeKind,
    #[serde(default)]
    pub role: Option<Bilingual>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub bank_account: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AgreementKind {
    Loan,
    Grant,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAgreement {
    pub kind: AgreementKind,
    pub template: String,
    /// A date parameter: when a loan must be repaid.
    #[serde(default)]
    pub repay_by: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTestDefaults {
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub submitted_on: Option<Spanned<toml::value::Datetime>>,
    #[serde(default)]
    #[schemars(with = "IndexMap<String, serde_json::Value>")]
    pub answers: IndexMap<String, Spanned<toml::Value>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTest {
    pub name: String,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub submitted_on: Option<Spanned<toml::value::Datetime>>,
    #[serde(default)]
    #[schemars(with = "IndexMap<String, serde_json::Value>")]
    pub answers: IndexMap<String, Spanned<toml::Value>>,
    #[serde(default)]
    pub unset: Vec<String>,
    #[schemars(with = "RawExpect")]
    pub expect: Spanned<RawExpect>,
}

#[derive(Debug, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawExpect {
    #[serde(default)]
    pub eligible: Option<bool>,
    #[serde(default)]
    pub amount: Option<String>,
    #[serde(default)]
    pub failed: Option<Vec<String>>,
    #[serde(default)]
    pub undetermined: Option<Vec<String>>,
    #[serde(default)]
    pub error: Option<String>,
}
