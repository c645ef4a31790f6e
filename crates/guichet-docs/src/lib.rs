//! # guichet-docs
//!
//! Documents from Typst templates to PDF/A-2a (archival, tagged for
//! accessibility): the decision letter today, agreements next. Pure: the
//! caller passes every text already in the reader's language (the screens'
//! Fluent files) and every value; no clock, no file system — the fonts are
//! embedded (typst-assets) and the data reaches the template as a virtual
//! `data.json`, never spliced into Typst source.

use typst::diag::{FileError, FileResult};
use typst::foundations::{Bytes, Datetime, Duration};
use typst::syntax::{FileId, RootedPath, Source, VirtualPath, VirtualRoot};
use typst::text::{Font, FontBook};
use typst::utils::LazyHash;
use typst::{Library, LibraryExt, World};
use typst_layout::PagedDocument;

/// Why a document could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DocError {
    #[error("the template failed: {0}")]
    Template(String),
    #[error("PDF export failed: {0}")]
    Pdf(String),
    #[error("the data could not be encoded: {0}")]
    Data(String),
}

const DECISION: &str = include_str!("../templates/decision.typ");
const LOAN_AGREEMENT: &str = include_str!("../templates/loan-agreement.typ");
const COMPLETION: &str = include_str!("../templates/completion.typ");

/// Where the loan agreement's signature boxes are on its last page: PDF
/// rectangles `[x, y, width, height]` in points from the bottom left, for
/// the borrower and then the lender's signing officer.
pub const SIGNATURE_BOXES: [[i32; 4]; 2] = [[72, 470, 220, 90], [320, 470, 220, 90]];

/// Fonts and the standard library, loaded once; cheap to share.
pub struct Engine {
    library: LazyHash<Library>,
    book: LazyHash<FontBook>,
    fonts: Vec<Font>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Engine({} fonts)", self.fonts.len())
    }
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new()
    }
}

impl Engine {
    pub fn new() -> Engine {
        let fonts: Vec<Font> = typst_assets::fonts().flat_map(|data| Font::iter(Bytes::new(data))).collect();
        let book = FontBook::from_fonts(&fonts);
        Engine { library: LazyHash::new(Library::default()), book: LazyHash::new(book), fonts }
    }

    /// Renders `template` with `data` (any JSON) to PDF/A-2a bytes.
    pub fn render(&self, template: &str, data: &serde_json::Value) -> Result<Vec<u8>, DocError> {
        let main = file_id("main.typ")?;
        let data_id = file_id("data.json")?;
        let bytes = serde_json::to_vec(data).map_err(|e| DocError::Data(e.to_string()))?;
        let world =
            DocWorld { engine: self, main: Source::new(main, template.to_owned()), data_id, data: Bytes::new(bytes) };
        let doc: PagedDocument = typst::compile(&world).output.map_err(|errs| {
            DocError::Template(errs.iter().map(|e| e.message.to_string()).collect::<Vec<_>>().join("; "))
        })?;
        let standards = typst_pdf::PdfStandards::new(&[typst_pdf::PdfStandard::A_2a])
            .map_err(|e| DocError::Pdf(e.message().to_string()))?;
        let options = typst_pdf::PdfOptions { standards, tagged: true, ..Default::default() };
        typst_pdf::pdf(&doc, &options)
            .map_err(|errs| DocError::Pdf(errs.iter().map(|e| e.message.to_string()).collect::<Vec<_>>().join("; ")))
    }

    /// The decision letter (see `templates/decision.typ` for the fields).
    pub fn decision_letter(&self, letter: &DecisionLetter) -> Result<Vec<u8>, DocError> {
        let data = serde_json::to_value(letter).map_err(|e| DocError::Data(e.to_string()))?;
        self.render(DECISION, &data)
    }

    /// A loan agreement (see `templates/loan-agreement.typ`); its wording
    /// is in the template, in French and English.
    pub fn loan_agreement(&self, a: &LoanAgreement) -> Result<Vec<u8>, DocError> {
        let data = serde_json::to_value(a).map_err(|e| DocError::Data(e.to_string()))?;
        self.render(LOAN_AGREEMENT, &data)
    }

    /// An envelope's certificate of completion.
    pub fn completion(&self, c: &Completion) -> Result<Vec<u8>, DocError> {
        let data = serde_json::to_value(c).map_err(|e| DocError::Data(e.to_string()))?;
        self.render(COMPLETION, &data)
    }
}

/// The pages of any PDF drawn as SVG images (for the signing ceremony:
/// the signer sees the whole document in the browser, whatever it is).
/// At most `max_pages` pages; the total page count comes with them.
pub fn pdf_pages_svg(pdf: &[u8], max_pages: usize) -> Result<(Vec<String>, usize), DocError> {
    use hayro_svg::hayro_interpret::InterpreterSettings;
    let doc = hayro_svg::hayro_syntax::Pdf::new(pdf.to_vec())
        .map_err(|e| DocError::Pdf(format!("the document cannot be drawn: {e:?}")))?;
    let pages = doc.pages();
    let cache = hayro_svg::RenderCache::new();
    let settings = InterpreterSettings::default();
    let render = hayro_svg::SvgRenderSettings { bg_color: [255, 255, 255, 255] };
    let svgs = pages.iter().take(max_pages).map(|p| hayro_svg::convert(p, &cache, &settings, &render)).collect();
    Ok((svgs, pages.len()))
}

/// One page of a PDF (from 0) drawn as SVG, with the page count; `None`
/// past the last page.
pub fn pdf_page_svg(pdf: &[u8], index: usize) -> Result<(Option<String>, usize), DocError> {
    use hayro_svg::hayro_interpret::InterpreterSettings;
    let doc = hayro_svg::hayro_syntax::Pdf::new(pdf.to_vec())
        .map_err(|e| DocError::Pdf(format!("the document cannot be drawn: {e:?}")))?;
    let pages = doc.pages();
    let cache = hayro_svg::RenderCache::new();
    let render = hayro_svg::SvgRenderSettings { bg_color: [255, 255, 255, 255] };
    let svg = pages.get(index).map(|p| hayro_svg::convert(p, &cache, &InterpreterSettings::default(), &render));
    Ok((svg, pages.len()))
}

/// A party of an agreement.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct AgreementParty {
    pub name: String,
    /// One line.
    pub address: String,
}

/// A signature box of a generated document.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SignatureBox {
    pub label: String,
    pub rect: [i32; 4],
}

/// A loan agreement's values, already formatted in its language.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LoanAgreement {
    /// `fr` or `en`.
    pub lang: String,
    pub organization: String,
    pub program: String,
    pub reference: String,
    pub issued: [i32; 3],
    pub date: String,
    pub borrower: AgreementParty,
    pub landlord: AgreementParty,
    pub amount: String,
    pub repay_by: String,
    pub boxes: Vec<SignatureBox>,
}

/// One signer on a certificate of completion.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CompletionSigner {
    pub group: u32,
    pub name: String,
    pub email: String,
    pub certificate: String,
    pub at: String,
}

/// One event on a certificate of completion.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CompletionEvent {
    pub at: String,
    pub what: String,
    pub who: String,
    pub evidence: String,
}

/// A certificate of completion's values, already formatted.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Completion {
    pub lang: String,
    pub organization: String,
    pub title: String,
    pub envelope: String,
    pub sender: String,
    pub original: String,
    pub signed: String,
    pub completed: String,
    pub issued: [i32; 3],
    pub signers: Vec<CompletionSigner>,
    pub events: Vec<CompletionEvent>,
}

fn file_id(name: &str) -> Result<FileId, DocError> {
    let path = VirtualPath::new(name).map_err(|e| DocError::Template(format!("{name}: {e:?}")))?;
    Ok(RootedPath::new(VirtualRoot::Project, path).intern())
}

struct DocWorld<'a> {
    engine: &'a Engine,
    main: Source,
    data_id: FileId,
    data: Bytes,
}

impl World for DocWorld<'_> {
    fn library(&self) -> &LazyHash<Library> {
        &self.engine.library
    }

    fn book(&self) -> &LazyHash<FontBook> {
        &self.engine.book
    }

    fn main(&self) -> FileId {
        self.main.id()
    }

    fn source(&self, id: FileId) -> FileResult<Source> {
        if id == self.main.id() { Ok(self.main.clone()) } else { Err(FileError::AccessDenied) }
    }

    fn file(&self, id: FileId) -> FileResult<Bytes> {
        if id == self.data_id { Ok(self.data.clone()) } else { Err(FileError::AccessDenied) }
    }

    fn font(&self, index: usize) -> Option<Font> {
        self.engine.fonts.get(index).cloned()
    }

    fn today(&self, _offset: Option<Duration>) -> Option<Datetime> {
        // No clock: dates come in the data.
        None
    }
}

/// A decision letter, every text already in the reader's language.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DecisionLetter {
    /// `fr` or `en` (the document's language, for accessibility).
    pub lang: String,
    pub organization: String,
    pub title: String,
    /// The decision's day `[year, month, day]` (the PDF/A document date).
    pub issued: [i32; 3],
    pub date: String,
    pub recipient: String,
    pub reference: String,
    pub program: String,
    /// "Your application is approved." …
    pub outcome: String,
    pub amount: Option<String>,
    pub reasons_title: String,
    pub reasons: Vec<String>,
    pub justification_title: String,
    pub justification: String,
    /// The notice of a decision made without human involvement, if so.
    pub automatic: Option<String>,
    pub explanation_title: String,
    pub explanation: String,
    pub recourse_title: String,
    pub recourse: String,
    pub footer: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter() -> DecisionLetter {
        DecisionLetter {
            lang: "fr".into(),
            organization: "Société d'habitation du Québec".into(),
            title: "Décision".into(),
            issued: [2020, 5, 10],
            date: "10 mai 2020".into(),
            recipient: "Marie Tremblay".into(),
            reference: "Demande 4e61a109".into(),
            program: "Programme d'aide financière aux locataires".into(),
            outcome: "Votre demande est refusée.".into(),
            amount: None,
            reasons_title: "Motifs".into(),
            reasons: vec!["Votre bail n'était pas en vigueur le 1er mai 2020.".into()],
            justification_title: "Précisions".into(),
            justification: "Le bail fourni commence le 15 mai 2020 (#set page(width: 1pt)).".into(),
            automatic: None,
            explanation_title: "Admissibilité".into(),
            explanation: "✗ Bail en vigueur le 1er mai 2020".into(),
            recourse_title: "Recours".into(),
            recourse: "Vous pouvez demander une révision dans les 30 jours.".into(),
            footer: "Document produit par guichet.".into(),
        }
    }

    #[test]
    fn a_decision_letter_is_a_tagged_pdf_a() {
        let engine = Engine::new();
        let pdf = engine.decision_letter(&letter()).expect("pdf");
        assert!(pdf.starts_with(b"%PDF-"));
        let text = String::from_utf8_lossy(&pdf);
        assert!(
            text.contains("pdfaid:part") && text.contains("<pdfaid:part>2</pdfaid:part>")
                || text.contains("pdfaid:part=\"2\""),
            "PDF/A-2 metadata"
        );
        assert!(text.contains("/StructTreeRoot"), "tagged");
        assert!(text.contains("/Lang"), "the document's language is declared");
        // Data never becomes Typst code: the page size did not change.
        let again = engine.decision_letter(&letter()).expect("pdf");
        assert_eq!(pdf.len(), again.len(), "deterministic");
    }

    fn agreement(lang: &str) -> LoanAgreement {
        LoanAgreement {
            lang: lang.into(),
            organization: "Société d'habitation du Québec".into(),
            program: "Programme d'aide financière aux locataires".into(),
            reference: "Demande 4e61a109".into(),
            issued: [2020, 5, 12],
            date: "12 mai 2020".into(),
            borrower: AgreementParty {
                name: "Marie Tremblay".into(),
                address: "4321, rue Saint-Denis, Montréal".into(),
            },
            landlord: AgreementParty {
                name: "Gestion Tremblay inc.".into(),
                address: "4500, boul. Saint-Laurent".into(),
            },
            amount: "1 500,00 $".into(),
            repay_by: "1er août 2021".into(),
            boxes: SIGNATURE_BOXES
                .iter()
                .zip(["L'emprunteur", "Pour le prêteur"])
                .map(|(r, l)| SignatureBox { label: l.into(), rect: *r })
                .collect(),
        }
    }

    #[test]
    fn a_loan_agreement_is_a_tagged_pdf_a_in_both_languages_and_can_be_drawn() {
        let engine = Engine::new();
        for lang in ["fr", "en"] {
            let pdf = engine.loan_agreement(&agreement(lang)).expect("pdf");
            let text = String::from_utf8_lossy(&pdf);
            assert!(text.contains("/StructTreeRoot"), "tagged");
            let (pages, count) = pdf_pages_svg(&pdf, 10).expect("drawn");
            assert_eq!(count, 2, "the text, then the signature page");
            assert_eq!(pages.len(), 2);
            assert!(pages[0].starts_with("<svg"), "{}", &pages[0][..40.min(pages[0].len())]);
        }
        let pdf = engine.loan_agreement(&agreement("fr")).expect("pdf");
        let (pages, count) = pdf_pages_svg(&pdf, 1).expect("drawn");
        assert_eq!((pages.len(), count), (1, 2), "at most max_pages are drawn");
        let (second, count) = pdf_page_svg(&pdf, 1).expect("drawn");
        assert!(second.is_some_and(|s| s.starts_with("<svg")) && count == 2);
        assert!(pdf_page_svg(&pdf, 2).expect("drawn").0.is_none(), "past the last page");
    }

    #[test]
    fn what_is_not_a_pdf_cannot_be_drawn() {
        assert!(pdf_pages_svg(b"GIF89a", 5).is_err());
    }

    #[test]
    fn a_certificate_of_completion_lists_signers_and_events() {
        let engine = Engine::new();
        let c = Completion {
            lang: "en".into(),
            organization: "SHQ".into(),
            title: "Loan agreement".into(),
            envelope: "e_1".into(),
            sender: "Case worker".into(),
            original: "ab".repeat(32),
            signed: "cd".repeat(32),
            completed: "2020-05-12 10:00".into(),
            issued: [2020, 5, 12],
            signers: vec![CompletionSigner {
                group: 1,
                name: "Marie".into(),
                email: "marie@example.org".into(),
                certificate: "CN=SHQ seal".into(),
                at: "2020-05-12 09:00".into(),
            }],
            events: vec![CompletionEvent {
                at: "2020-05-12 09:00".into(),
                what: "Signed".into(),
                who: "Marie".into(),
                evidence: "session, 127.0.0.1".into(),
            }],
        };
        let pdf = engine.completion(&c).expect("pdf");
        assert!(String::from_utf8_lossy(&pdf).contains("/StructTreeRoot"));
    }

    #[test]
    fn a_broken_template_is_an_error_not_a_panic() {
        let engine = Engine::new();
        assert!(matches!(engine.render("#let x = (", &serde_json::json!({})), Err(DocError::Template(_))));
        assert!(matches!(engine.render("#read(\"/etc/passwd\")", &serde_json::json!({})), Err(DocError::Template(_))));
    }
}
