//! The screens of templates: the list, a new template, and sending from
//! one (a single envelope, or one per row of a CSV file).

#![allow(clippy::result_large_err)]

use askama::Template;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use guichet_app::AppError;
use std::collections::HashMap;

use crate::AppState;
use crate::i18n::Tr;
use crate::pages::{Ctx, Nav, Pairs, csrf_ok, ctx, failure, first, html, message, see_other, to_login};

const ROWS: usize = 4;

const EXAMPLE: &str = "#let d = json(\"data.json\")\n#set page(paper: \"us-letter\", margin: 72pt)\n\n= Contrat\n\nEntre #d.organization et #d.fields.nom.\n\nFait le #d.date.\n";

#[derive(Template)]
#[template(path = "templates.html")]
struct TemplatesPage {
    t: Tr,
    nav: Nav,
    items: Vec<(String, String, String)>,
}

fn staff(c: &Ctx) -> Result<guichet_app::Caller, Response> {
    let Some(caller) = c.caller.clone() else { return Err(to_login(&c.nav.path)) };
    if !caller.is_staff() {
        return Err(message(c, StatusCode::FORBIDDEN, "page-forbidden", "page-not-found-text"));
    }
    Ok(caller)
}

pub(crate) async fn list(State(s): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let caller = match staff(&c) {
        Ok(x) => x,
        Err(r) => return r,
    };
    match s.app.templates(&caller).await {
        Ok(list) => {
            let items =
                list.into_iter().map(|t| (t.id, t.definition.name.clone(), t.definition.fields.join(", "))).collect();
            html(StatusCode::OK, &TemplatesPage { t: c.t, nav: c.nav.clone(), items })
        }
        Err(e) => failure(&c, e),
    }
}

#[derive(Template)]
#[template(path = "template_new.html")]
struct NewTemplatePage {
    t: Tr,
    nav: Nav,
    error: Option<String>,
    name: String,
    title: String,
    fields: String,
    lang: String,
    source: String,
    /// (row from 1, (label, kind, group))
    rows: Vec<(usize, (String, String, String))>,
}

fn new_page(c: &Ctx, f: &HashMap<String, String>, error: Option<String>, status: StatusCode) -> Response {
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    let rows = (1..=ROWS)
        .map(|i| {
            let group = f.get(&format!("group-{i}")).cloned().unwrap_or_else(|| i.to_string());
            (i, (get(&format!("label-{i}")), get(&format!("kind-{i}")), group))
        })
        .collect();
    let page = NewTemplatePage {
        t: c.t,
        nav: c.nav.clone(),
        error,
        name: get("name"),
        title: get("title"),
        fields: f.get("fields").cloned().unwrap_or_else(|| "nom".into()),
        lang: f.get("lang").cloned().unwrap_or_else(|| c.t.lang.code().into()),
        source: f.get("source").cloned().unwrap_or_else(|| EXAMPLE.into()),
        rows,
    };
    html(status, &page)
}

pub(crate) async fn new_form(State(s): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    if let Err(r) = staff(&c) {
        return r;
    }
    new_page(&c, &HashMap::new(), None, StatusCode::OK)
}

pub(crate) async fn create(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    axum::Form(f): axum::Form<Pairs>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let caller = match staff(&c) {
        Ok(x) => x,
        Err(r) => return r,
    };
    if !csrf_ok(&c, first(&f, "_csrf")) {
        return message(&c, StatusCode::FORBIDDEN, "page-forbidden", "error-stale");
    }
    let form: HashMap<String, String> = f.iter().cloned().collect();
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    let mut signers = Vec::new();
    for i in 1..=ROWS {
        let kind = get(&format!("kind-{i}"));
        if kind.is_empty() {
            continue;
        }
        signers.push(guichet_app::TemplateSigner {
            label: get(&format!("label-{i}")).trim().to_owned(),
            kind,
            group: get(&format!("group-{i}")).trim().parse().unwrap_or(0),
            field: None,
        });
    }
    let input = guichet_app::TemplateInput {
        name: get("name"),
        lang: Some(get("lang")).filter(|l| l == "fr" || l == "en"),
        title: get("title"),
        source: get("source").replace("\r\n", "\n"),
        fields: get("fields").split(',').map(|x| x.trim().to_owned()).filter(|x| !x.is_empty()).collect(),
        signers,
        message: String::new(),
        expires_in_days: None,
    };
    match s.app.create_template(&caller, input).await {
        Ok(t) => see_other(&format!("/modeles/{}", t.id)),
        Err(AppError::Invalid { message, .. }) => {
            new_page(&c, &form, Some(c.t.t1("template-error", "why", &message)), StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(e) => failure(&c, e),
    }
}

#[derive(Template)]
#[template(path = "template.html")]
struct TemplatePage {
    t: Tr,
    nav: Nav,
    id: String,
    name: String,
    notice: Option<String>,
    error: Option<String>,
    details: Vec<String>,
    fields: Vec<String>,
    /// (place from 1, label, whether an address is asked)
    signers: Vec<(usize, String, bool)>,
    header: String,
}

async fn template_page(
    s: &AppState,
    c: &Ctx,
    id: &str,
    notice: Option<String>,
    error: Option<(String, Vec<String>)>,
    status: StatusCode,
) -> Response {
    let caller = match staff(c) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let t = match s.app.template(&caller, id).await {
        Ok(t) => t,
        Err(e) => return failure(c, e),
    };
    let (error, details) = match error {
        Some((e, d)) => (Some(e), d),
        None => (None, Vec::new()),
    };
    let page = TemplatePage {
        t: c.t,
        nav: c.nav.clone(),
        id: t.id.clone(),
        name: t.definition.name.clone(),
        notice,
        error,
        details,
        fields: t.definition.fields.clone(),
        signers: t
            .definition
            .signers
            .iter()
            .enumerate()
            .map(|(i, x)| (i + 1, x.label.clone(), x.kind != "officer"))
            .collect(),
        header: t.csv_header.join(","),
    };
    html(status, &page)
}

pub(crate) async fn show(State(s): State<AppState>, headers: HeaderMap, uri: Uri, Path(id): Path<String>) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    template_page(&s, &c, &id, None, None, StatusCode::OK).await
}

pub(crate) async fn send_one(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<Pairs>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let caller = match staff(&c) {
        Ok(x) => x,
        Err(r) => return r,
    };
    if !csrf_ok(&c, first(&f, "_csrf")) {
        return message(&c, StatusCode::FORBIDDEN, "page-forbidden", "error-stale");
    }
    let values =
        f.iter().filter_map(|(k, v)| k.strip_prefix("f-").map(|k| (k.to_owned(), v.trim().to_owned()))).collect();
    let mut signers = Vec::new();
    for i in 1..=20 {
        signers.push(guichet_app::SignerAddress {
            email: first(&f, &format!("email-{i}")).unwrap_or_default().trim().to_owned(),
            name: first(&f, &format!("name-{i}")).map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()),
        });
    }
    match s.app.send_template(&caller, &id, guichet_app::TemplateSend { values, signers }).await {
        Ok(e) => see_other(&format!("/enveloppes/{}", e.id)),
        Err(AppError::Invalid { message, .. }) => {
            let e = c.t.t1("new-envelope-error", "why", &message);
            template_page(&s, &c, &id, None, Some((e, vec![])), StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => failure(&c, e),
    }
}

pub(crate) async fn send_bulk(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    multipart: Multipart,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let limit = s.app.config.max_upload;
    let mut form = crate::extract::read_form(multipart, &["csv"], limit).await.unwrap_or_default();
    let (csv, too_large) = (form.take_file("csv"), form.too_large);
    let caller = match staff(&c) {
        Ok(x) => x,
        Err(r) => return r,
    };
    if !csrf_ok(&c, Some(form.field("_csrf"))) {
        return message(&c, StatusCode::FORBIDDEN, "page-forbidden", "error-stale");
    }
    let t = c.t;
    if too_large {
        let e = t.t1("verify-error-size", "size", &format!("{} Mo", limit / (1024 * 1024)));
        return template_page(&s, &c, &id, None, Some((e, vec![])), StatusCode::PAYLOAD_TOO_LARGE).await;
    }
    match s.app.bulk_send(&caller, &id, &csv).await {
        Ok(r) => {
            let notice = t.t1("template-bulk-done", "count", &r.sent.to_string());
            template_page(&s, &c, &id, Some(notice), None, StatusCode::OK).await
        }
        Err(AppError::Invalid { message, details, .. }) => {
            let lines = details
                .and_then(|d| d.as_array().cloned())
                .unwrap_or_default()
                .into_iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect();
            let e = t.t1("template-bulk-error", "why", &message);
            template_page(&s, &c, &id, None, Some((e, lines)), StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => failure(&c, e),
    }
}
