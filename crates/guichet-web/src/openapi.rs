//! The OpenAPI 3.1 document, generated from the route table and the
//! request and response types' JSON Schemas.

use schemars::generate::SchemaSettings;

use crate::api::routes;

/// The OpenAPI document of the service.
pub fn openapi() -> serde_json::Value {
    let mut settings = SchemaSettings::draft2020_12();
    settings.definitions_path = "#/components/schemas/".into();
    let mut g = settings.into_generator();
    let mut paths = serde_json::Map::new();
    for r in routes() {
        let mut op = serde_json::json!({
            "summary": r.summary,
            "operationId": format!("{}_{}", r.method, r.path.trim_start_matches('/').replace(['/', '{', '}', '.', '-'], "_")),
            "responses": {
                "default": {
                    "description": "An error: {\"error\": {\"code\", \"message\", \"field\"?, \"details\"?}}",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
                }
            }
        });
        let ok = match r.method {
            "post"
                if r.path.ends_with("/dossiers")
                    || r.path.ends_with("/register")
                    || r.path.ends_with("/users")
                    || r.path.ends_with("/envelopes")
                    || r.path.ends_with("/certificates")
                    || r.path.ends_with("/agreement")
                    || r.path.ends_with("/templates")
                    || r.path.ends_with("/send")
                    || r.path.ends_with("/bulk")
                    || r.path.ends_with("/import")
                    || r.path.ends_with("/certificates/token") =>
            {
                "201"
            }
            _ => "200",
        };
        let mut resp = serde_json::json!({"description": "Success"});
        if let Some(f) = r.response {
            resp["content"] = serde_json::json!({"application/json": {"schema": f(&mut g).to_value()}});
        }
        op["responses"][ok] = resp;
        if let Some(f) = r.body {
            let schema = f(&mut g).to_value();
            op["requestBody"] = if r.method == "post" && r.path == "/api/v1/envelopes" {
                // A PDF and its envelope's JSON, in one form.
                serde_json::json!({"required": true, "content": {"multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["document", "envelope"],
                        "properties": {
                            "document": {"type": "string", "contentMediaType": "application/pdf"},
                            "envelope": schema,
                        }
                    },
                    "encoding": {"envelope": {"contentType": "application/json"}}
                }}})
            } else {
                serde_json::json!({"required": true, "content": {"application/json": {"schema": schema}}})
            };
        }
        if r.auth {
            op["security"] = serde_json::json!([{"session": []}, {"bearer": []}]);
        }
        let params: Vec<serde_json::Value> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| serde_json::json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        if !params.is_empty() {
            op["parameters"] = params.into();
        }
        let entry = paths.entry(r.path.to_owned()).or_insert_with(|| serde_json::json!({}));
        entry[r.method] = op;
    }
    let mut schemas = g.take_definitions(true);
    schemas.insert(
        "Error".into(),
        serde_json::json!({
            "type": "object",
            "required": ["error"],
            "properties": {"error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "description": "Stable: unauthenticated, bad_credentials, totp_required, throttled, forbidden, not_found, version_conflict, wrong_state, invalid_request, invalid_answer, missing_answer, outside_window, unknown_program, too_large, unsupported_media_type, taken, internal…"},
                    "message": {"type": "string"},
                    "field": {"type": "string"},
                    "details": {},
                    "current_version": {"type": "integer"}
                }
            }}
        }),
    );
    serde_json::json!({
        "openapi": "3.1.0",
        "info": {
            "title": "guichet",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Aid programs and signed agreements, online. Sessions come from /api/v1/auth/login (cookie + X-CSRF-Token on unsafe requests); scripts use bearer tokens from /api/v1/me/tokens."
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": guichet_app::SESSION_COOKIE},
                "bearer": {"type": "http", "scheme": "bearer"}
            }
        }
    })
}
