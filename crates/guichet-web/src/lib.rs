//! # guichet-web
//!
//! The HTTP face of guichet: the JSON API under `/api/v1` (its OpenAPI
//! document at `/api/v1/openapi.json` is generated from the same route
//! table the router is built from, so the two cannot drift), `/healthz`,
//! `/readyz` and Prometheus `/metrics`. Handlers only translate: HTTP in,
//! a `guichet-app` use case, HTTP out. Errors always answer
//! `{"error": {"code", "message", "field"?, "details"?}}` with a stable code.

mod api;
mod extract;
mod finance_pages;
pub mod i18n;
mod metrics;
mod openapi;
mod pages;
mod payments_api;
mod signing_pages;
mod templates_pages;

pub use api::routes;
pub use openapi::openapi;

use axum::Router;
use guichet_app::App;
use std::sync::Arc;

/// What every handler gets.
#[derive(Debug, Clone)]
pub struct AppState {
    pub app: App,
    pub metrics: Arc<metrics::Metrics>,
    /// Set `Secure` on cookies (when served over HTTPS).
    pub secure_cookies: bool,
}

/// The whole HTTP application.
pub fn router(app: App) -> Router {
    let secure_cookies = app.config.base_url.starts_with("https://");
    let state = AppState { app, metrics: Arc::new(metrics::Metrics::default()), secure_cookies };
    let mut r: Router<AppState> = Router::new();
    let mut by_path: std::collections::BTreeMap<&'static str, axum::routing::MethodRouter<AppState>> =
        std::collections::BTreeMap::new();
    for route in routes() {
        let mr = by_path.remove(route.path);
        by_path.insert(
            route.path,
            match mr {
                Some(m) => m.merge(route.handler),
                None => route.handler,
            },
        );
    }
    for (path, mr) in by_path {
        r = r.route(path, mr);
    }
    use axum::routing::{get, post};
    r = r
        .route("/", get(pages::home))
        .route("/static/guichet.css", get(pages::stylesheet))
        .route("/static/guichet.js", get(pages::script))
        .route("/langue/{code}", get(pages::language))
        .route("/connexion", get(pages::login_form).post(pages::login))
        .route("/deconnexion", post(pages::logout))
        .route("/inscription", get(pages::register_form).post(pages::register))
        .route("/programmes/{id}", get(pages::program))
        .route("/programmes/{id}/commencer", post(pages::start))
        .route("/mes-demandes", get(pages::my_dossiers))
        .route("/file", get(pages::queue))
        .route("/demandes/{id}", get(pages::dossier))
        .route("/demandes/{id}/etapes/{step}", get(pages::step_form).post(pages::step_save))
        .route("/demandes/{id}/verification", get(pages::review))
        .route("/demandes/{id}/soumettre", post(pages::submit))
        .route("/demandes/{id}/renseignements", post(pages::request_information))
        .route("/demandes/{id}/information", post(pages::provide_information))
        .route("/demandes/{id}/demande-revision", post(pages::request_review))
        .route("/demandes/{id}/prise-en-charge", post(pages::take))
        .route("/demandes/{id}/lettre.pdf", get(pages::letter))
        .route("/admin", get(pages::admin))
        .route("/admin/utilisateurs/{id}", post(pages::admin_user))
        .route("/admin/invitations", post(pages::admin_invite))
        .route("/admin/audit", post(pages::admin_audit))
        .route("/admin/parametres", post(pages::admin_settings))
        .route("/admin/logo", post(pages::admin_logo))
        .route("/logo", get(pages::logo))
        .route("/gestion-programmes", get(pages::manage))
        .route("/gestion-programmes/verifier", post(pages::manage_check))
        .route("/gestion-programmes/publier", post(pages::manage_publish))
        .route("/gestion-programmes/{id}/tableau", get(pages::dashboard))
        .route("/gestion-programmes/{id}/budget", post(pages::set_budget))
        .route("/gestion-programmes/{id}/dossiers.csv", get(pages::program_csv))
        .route("/demandes/{id}/entente", post(signing_pages::send_agreement))
        .route("/verifier", get(signing_pages::verify_form).post(signing_pages::verify_upload))
        // The address printed on documents, in English too.
        .route("/verify", get(signing_pages::verify_form).post(signing_pages::verify_upload))
        .route("/enveloppes", get(signing_pages::envelopes))
        .route("/enveloppes/nouvelle", get(signing_pages::new_envelope_form).post(signing_pages::new_envelope))
        .route("/modeles", get(templates_pages::list))
        .route("/modeles/nouveau", get(templates_pages::new_form).post(templates_pages::create))
        .route("/modeles/{id}", get(templates_pages::show))
        .route("/modeles/{id}/envoyer", post(templates_pages::send_one))
        .route("/modeles/{id}/envoi-groupe", post(templates_pages::send_bulk))
        .route("/signer/{token}", get(signing_pages::external))
        .route("/signer/{token}/pages/{file}", get(signing_pages::external_svg))
        .route("/signer/{token}/document.pdf", get(signing_pages::external_pdf))
        .route("/signer/{token}/code", post(signing_pages::external_code))
        .route("/signer/{token}/signature", post(signing_pages::external_sign))
        .route("/signer/{token}/refus", post(signing_pages::external_decline))
        .route("/enveloppes/{id}", get(signing_pages::envelope))
        .route("/enveloppes/{id}/pages/{file}", get(signing_pages::envelope_svg))
        .route("/enveloppes/{id}/document.pdf", get(signing_pages::envelope_pdf))
        .route("/enveloppes/{id}/signer/{index}", post(signing_pages::envelope_sign))
        .route("/enveloppes/{id}/refuser/{index}", post(signing_pages::envelope_decline))
        .route("/enveloppes/{id}/annuler", post(signing_pages::envelope_void))
        .route("/enveloppes/{id}/deleguer/{index}", post(signing_pages::envelope_delegate))
        .route("/compte/certificat", get(signing_pages::certificate).post(signing_pages::certificate_issue))
        .route("/compte/certificat/import", post(signing_pages::certificate_import))
        .route("/compte/certificat/{serial}/revoquer", post(signing_pages::certificate_revoke))
        .route("/admin/utilisateurs/{id}/certificats", get(signing_pages::admin_certificates))
        .route("/admin/certificats/{serial}/revoquer", post(signing_pages::admin_revoke))
        .route("/courriels", get(finance_pages::mailbox))
        .route("/finances", get(finance_pages::queue))
        .route("/finances/lots", post(finance_pages::create_batch))
        .route("/finances/lots/{id}", get(finance_pages::batch))
        .route("/finances/lots/{id}/approbation", post(finance_pages::approve))
        .route("/finances/lots/{id}/fichier", post(finance_pages::file))
        .route("/finances/retours", post(finance_pages::returns))
        .route("/finances/prets", get(finance_pages::loans))
        .route("/demandes/{id}/{action}", post(pages::decide));
    r.fallback(pages::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

/// Serves until `shutdown` resolves, then finishes the requests in flight
/// and closes the store (its writer commits what it accepted).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: App,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let store = app.store.clone();
    let r = router(app);
    let res = axum::serve(listener, r.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await;
    store.close().await;
    res
}
