//! The hub's OpenAPI 3 description, served unauthenticated at
//! `GET /v1/openapi.json`.
//!
//! It is generated from the code, so it cannot drift from what the hub
//! serves: every route is registered through [`super::routes()`], where
//! utoipa-axum's `routes!` takes each handler's `#[utoipa::path]`
//! annotation both as the router's route and as the description's path;
//! the request and response bodies are the protocol crate's own types
//! (`sealdrop_proto::api`, deriving `ToSchema` behind its `openapi`
//! feature). What every route shares is added here, from the same
//! constants the code uses: the request-signature security scheme and its
//! five headers (`sealdrop_proto::request`), the `401` answers of the
//! signature checks, and the `429` and `500` answers every route can give,
//! all in the one JSON error shape ([`ErrorBody`]).
//!
//! The routes that read the transfer log or the directory are signed on a
//! hub whose `log_access` is `members` (the default) and public on one
//! whose log is public: each hub serves the description of its own setting
//! ([`description_for`]), and those operations say who may read them (the
//! `x-sealdrop-readable-by` extension). The routes are the same either way.
//!
//! [`described_routes_only`] refuses a request that reached a route the
//! description does not list, so a route added past `routes!` fails every
//! test that uses it instead of going unnoticed.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use axum::body::Bytes;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sealdrop_proto::api::{ErrorBody, ErrorDetail, code};
use sealdrop_proto::request::{
    HEADER_CONTENT, HEADER_KEY, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIME, MAX_CLOCK_SKEW_SECS, UNSIGNED_BODY,
};
use utoipa::openapi::path::{Operation, Parameter, ParameterIn, PathItem};
use utoipa::openapi::response::Response as ResponseSpec;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::openapi::tag::Tag;
use utoipa::openapi::{Components, ContentBuilder, Info, OpenApi, Ref, RefOr, Required};
use utoipa::{PartialSchema, ToSchema};

use super::error::ApiError;
use super::log_access::{LogAccess, READABLE_BY, readable_by};
use crate::hub::Hub;

/// The security scheme of every signed route: the name handlers give in
/// `security((...))`. Its key is the `sealdrop-signature` header; the other
/// four signed headers are listed as parameters of each signed operation.
pub const SIGNATURE_SCHEME: &str = "sealdrop_request_signature";

/// Where the description is served.
pub const OPENAPI_PATH: &str = "/v1/openapi.json";

/// Raw bytes in a body (a ciphertext, a tile): a string of format
/// `binary`, where utoipa would describe a `Vec<u8>` as an array of numbers.
#[derive(Debug, Clone, Copy)]
pub struct Binary;

impl PartialSchema for Binary {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}

impl ToSchema for Binary {}

/// The description of a hub with the default `log_access` (`members`),
/// built once. Its routes are every hub's.
pub fn description() -> &'static OpenApi {
    description_for(LogAccess::Members)
}

/// The description of a hub whose log and directory are read by `access`,
/// built once for each setting.
pub fn description_for(access: LogAccess) -> &'static OpenApi {
    static MEMBERS: OnceLock<OpenApi> = OnceLock::new();
    static PUBLIC: OnceLock<OpenApi> = OnceLock::new();
    match access {
        LogAccess::Members => MEMBERS.get_or_init(|| build(access)),
        LogAccess::Public => PUBLIC.get_or_init(|| build(access)),
    }
}

/// The description as served (JSON), built once for each setting.
fn served(access: LogAccess) -> &'static Bytes {
    static MEMBERS: OnceLock<Bytes> = OnceLock::new();
    static PUBLIC: OnceLock<Bytes> = OnceLock::new();
    // Serialising plain data structures cannot fail; an empty document
    // would fail every client and test that reads it.
    let json = || Bytes::from(serde_json::to_vec_pretty(description_for(access)).unwrap_or_default());
    match access {
        LogAccess::Members => MEMBERS.get_or_init(json),
        LogAccess::Public => PUBLIC.get_or_init(json),
    }
}

/// `GET /v1/openapi.json`.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "hub",
    summary = "This description of the hub's API (OpenAPI 3)",
    description = "Every route, its parameters, request and response bodies and errors, and the request-signature \
                   scheme. Generated from the hub's code and its `log_access` setting, so it always matches what this \
                   hub serves.",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object)),
)]
pub async fn openapi_json(State(hub): State<Hub>) -> Response {
    let json = served(hub.config().log_access).clone();
    ([(CONTENT_TYPE, "application/json"), (CACHE_CONTROL, "no-cache")], json).into_response()
}

/// A router path template as OpenAPI writes it: axum's catch-all
/// `{*rest}` (one parameter spanning several segments) is `{rest}`.
pub fn openapi_path(template: &str) -> String {
    template.replace("{*", "{")
}

/// Every `(METHOD, template)` of an OpenAPI path item.
pub fn operations(item: &PathItem) -> Vec<(&'static str, &Operation)> {
    let all = [
        ("GET", &item.get),
        ("PUT", &item.put),
        ("POST", &item.post),
        ("DELETE", &item.delete),
        ("OPTIONS", &item.options),
        ("HEAD", &item.head),
        ("PATCH", &item.patch),
        ("TRACE", &item.trace),
    ];
    all.into_iter().filter_map(|(m, op)| op.as_ref().map(|op| (m, op))).collect()
}

fn operations_mut(item: &mut PathItem) -> Vec<&mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
    .collect()
}

/// Whether an operation requires the request signature.
pub fn is_signed(operation: &Operation) -> bool {
    operation
        .security
        .iter()
        .flatten()
        .any(|requirement| serde_json::to_value(requirement).is_ok_and(|v| v.get(SIGNATURE_SCHEME).is_some()))
}

/// The codes of the request-signature checks, all served as 401, in the
/// order the hub applies them (see `auth.rs`).
const SIGNATURE_CODES: [&str; 6] = [
    code::UNAUTHENTICATED,
    code::STALE_REQUEST,
    code::UNKNOWN_KEY,
    code::KEY_REVOKED,
    code::BAD_SIGNATURE,
    code::REPLAYED_NONCE,
];

fn error_response(description: String) -> ResponseSpec {
    ResponseSpec::builder()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new().schema(Some(Ref::from_schema_name(ErrorBody::name()))).build(),
        )
        .build()
}

/// The five signed headers, each a required header parameter of a signed
/// operation.
fn signature_headers() -> Vec<Parameter> {
    let header = |name: &str, description: String| {
        Parameter::builder()
            .name(name)
            .parameter_in(ParameterIn::Header)
            .required(Required::True)
            .description(Some(description))
            .schema(Some(String::schema()))
            .build()
    };
    vec![
        header(
            HEADER_KEY,
            format!(
                "The signing key's name as the directory lists it: a member key's `<party>/<member>`, or, on the \
                 operations marked `{READABLE_BY}` and on storing a cosignature, a witness key's name."
            ),
        ),
        header(
            HEADER_TIME,
            format!(
                "The request's time in Unix seconds; refused (`{}`) more than {MAX_CLOCK_SKEW_SECS} seconds from the hub's clock.",
                code::STALE_REQUEST
            ),
        ),
        header(
            HEADER_NONCE,
            format!(
                "16 to 64 characters of `A-Z a-z 0-9 - _`, random, used once per key (a replay is `{}`).",
                code::REPLAYED_NONCE
            ),
        ),
        header(
            HEADER_CONTENT,
            format!(
                "The body's SHA-256 in lowercase hex (of the empty body for GET), or `{UNSIGNED_BODY}` for the streamed \
                 upload, whose hash the signed manifest binds at commit."
            ),
        ),
        header(
            HEADER_SIGNATURE,
            "Base64 Ed25519 signature by the member key over \
             `sealdrop-request/v1\\n<METHOD>\\n<path and query>\\n<time>\\n<nonce>\\n<content sha256>\\n<key>\\n`."
                .into(),
        ),
    ]
}

fn build(access: LogAccess) -> OpenApi {
    let mut api = super::routes().into_openapi();
    api.info = Info::builder()
        .title("sealdrop hub")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "The hub stores and relays age ciphertext between the parties of a sharing agreement. Every route \
             with the `sealdrop_request_signature` security requirement must be signed by a member key of the \
             hub's current directory (see that scheme); reading the transfer log and the directory (the operations \
             marked `x-sealdrop-readable-by`) and storing a cosignature may also be signed by a witness key the \
             directory lists. The others are public and read-only, except publishing a directory, which carries \
             the coordinator's own signature. Every error is `{\"error\": {\"code\", \"message\"}}` with a \
             stable code; a `429` carries `Retry-After`.",
        ))
        .build();

    // axum's catch-all parameter, written as OpenAPI expects.
    let paths = std::mem::take(&mut api.paths.paths);
    api.paths.paths = paths.into_iter().map(|(path, item)| (openapi_path(&path), item)).collect();

    let retry_after = utoipa::openapi::header::Header::builder()
        .schema(Some(u64::schema()))
        .description(Some("Seconds to wait before trying again."))
        .build();
    let mut rate_limited = error_response(format!(
        "`{}`: too many requests from this address or party; wait the `Retry-After` seconds and try again",
        code::RATE_LIMITED
    ));
    rate_limited.headers.insert("Retry-After".to_owned(), RefOr::T(retry_after.clone()));
    let internal =
        error_response(format!("`{}`: the hub failed; its operator finds the cause in its log", code::INTERNAL));
    let unauthorized = error_response(format!(
        "The request signature was refused: {}",
        SIGNATURE_CODES.map(|c| format!("`{c}`")).join(", ")
    ));
    for item in api.paths.paths.values_mut() {
        for operation in operations_mut(item) {
            // The log's and the directory's reads: signed unless this hub's log is public.
            if let Some(extensions) = operation.extensions.as_mut()
                && let Some(readers) = extensions.get_mut(READABLE_BY)
            {
                *readers = serde_json::Value::from(readable_by(access));
                if access == LogAccess::Public {
                    operation.security = None;
                }
            }
            let signed = is_signed(operation);
            let responses = &mut operation.responses.responses;
            match responses.get_mut("429") {
                // A route's own 429 (a quota) is also the rate limit's, with its header.
                Some(RefOr::T(own)) => {
                    own.description = format!("{}; {}", rate_limited.description, own.description);
                    own.headers.entry("Retry-After".to_owned()).or_insert_with(|| RefOr::T(retry_after.clone()));
                }
                _ => {
                    responses.insert("429".into(), RefOr::T(rate_limited.clone()));
                }
            }
            responses.entry("500".into()).or_insert_with(|| RefOr::T(internal.clone()));
            if signed {
                responses.insert("401".into(), RefOr::T(unauthorized.clone()));
                let parameters = operation.parameters.get_or_insert_with(Vec::new);
                parameters.extend(signature_headers().into_iter().map(RefOr::T));
            }
        }
    }

    let components = api.components.get_or_insert_with(Components::new);
    components.schemas.insert(ErrorBody::name().into_owned(), ErrorBody::schema());
    components.schemas.insert(ErrorDetail::name().into_owned(), ErrorDetail::schema());
    components.security_schemes.insert(
        SIGNATURE_SCHEME.to_owned(),
        RefOr::T(SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            HEADER_SIGNATURE.to_owned(),
            format!(
                "Every request of a party is signed by one of its member keys in the hub's current directory (or, \
                 to read the transfer log and the directory and to store a cosignature, by a witness key it \
                 lists), with five headers: `{HEADER_KEY}`, `{HEADER_TIME}`, `{HEADER_NONCE}`, `{HEADER_CONTENT}` and \
                 `{HEADER_SIGNATURE}` (each listed on the operations that need them). The hub checks, in order: the \
                 headers are well-formed (`{}`), the time is within {MAX_CLOCK_SKEW_SECS} s of its clock (`{}`), the \
                 key is a member key of the current directory (`{}`; `{}` for a key the directory revoked), the \
                 signature and the body's hash (`{}`), and only then that the nonce is new (`{}`). A witness signs \
                 with the Ed25519 key of its listed cosignature key, naming that key in `{HEADER_KEY}`.",
                code::UNAUTHENTICATED,
                code::STALE_REQUEST,
                code::UNKNOWN_KEY,
                code::KEY_REVOKED,
                code::BAD_SIGNATURE,
                code::REPLAYED_NONCE,
            ),
        )))),
    );
    api.tags = Some(vec![
        tag("hub", "The hub itself: identity, this description, health."),
        tag("directory", "The coordinator-signed directory of parties, keys and agreements."),
        tag("drops", "Sending, fetching, acknowledging and recalling drops (signed)."),
        tag("log", "The signed transfer log (C2SP formats) and witness cosignatures."),
    ]);
    api
}

fn tag(name: &str, description: &str) -> Tag {
    Tag::builder().name(name).description(Some(description)).build()
}

/// The paths the description lists (as OpenAPI writes them: see [`openapi_path`]).
fn described_templates() -> &'static BTreeSet<String> {
    static TEMPLATES: OnceLock<BTreeSet<String>> = OnceLock::new();
    TEMPLATES.get_or_init(|| description().paths.paths.keys().cloned().collect())
}

/// Middleware: a request that reached a route the description does not
/// list is refused as the hub's own bug (500), so an undocumented route
/// can never be served, and the first test that uses it fails.
pub async fn described_routes_only(req: Request, next: Next) -> Response {
    if let Some(route) = req.extensions().get::<MatchedPath>()
        && !described_templates().contains(&openapi_path(route.as_str()))
    {
        return ApiError::internal(format_args!(
            "route {} is not in the API description: register it with utoipa_axum::routes! in api::routes",
            route.as_str()
        ))
        .into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::routing::get;
    use sealdrop_proto::clock::SystemClock;
    use sealdrop_proto::directory::SignedDirectory;

    use super::*;
    use crate::api::test_support::sample;
    use crate::hub::Hub;
    use crate::init::{InitOptions, init};

    /// A hub over a fresh data directory, and where it is kept.
    fn hub() -> (tempfile::TempDir, Hub) {
        let tmp = tempfile::tempdir().unwrap();
        let (authority, _, directory) = sample();
        let opts = InitOptions {
            data_dir: tmp.path().join("hub"),
            origin: "hub.test".into(),
            authority: authority.verifier(),
            directory_note: SignedDirectory::sign(directory, &authority).unwrap().note,
            backends: Default::default(),
        };
        init(&opts, &SystemClock).unwrap();
        let hub = Hub::open(&opts.data_dir, Arc::new(SystemClock)).unwrap();
        (tmp, hub)
    }

    /// Serves `router` on a loopback port; returns its base URL.
    async fn serve(router: axum::Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        base
    }

    /// A value for a path parameter, well-formed enough to reach the handler.
    fn sample_value(name: &str) -> &'static str {
        match name {
            "id" => "d-aaaaaaaaaaaaaaaaaaaaaaaaaa",
            "path" => "0/000",
            _ => "1",
        }
    }

    fn instantiate(template: &str) -> String {
        let mut out = String::new();
        let mut rest = template;
        while let Some(start) = rest.find('{') {
            let end = start + rest[start..].find('}').unwrap();
            out.push_str(&rest[..start]);
            out.push_str(sample_value(&rest[start + 1..end]));
            rest = &rest[end + 1..];
        }
        out + rest
    }

    /// Whether an answer came from the router's fallback (no such route or
    /// method), by its message.
    async fn is_no_route(response: reqwest::Response) -> bool {
        response.text().await.unwrap().contains("there is no route")
    }

    #[tokio::test]
    async fn the_router_serves_exactly_the_described_operations() {
        let (_tmp, hub) = hub();
        let base = serve(crate::api::router(hub)).await;
        let client = reqwest::Client::new();
        let methods = ["GET", "POST", "PUT", "PATCH", "DELETE"];
        let paths = &description().paths.paths;
        assert!(paths.len() >= 20, "{} paths", paths.len());
        for (template, item) in paths {
            let described: Vec<&str> = operations(item).into_iter().map(|(m, _)| m).collect();
            let url = format!("{base}{}", instantiate(template));
            for method in methods {
                let response =
                    client.request(method.parse().unwrap(), &url).body("{}").send().await.unwrap_or_else(|e| {
                        panic!("{method} {template}: {e}");
                    });
                let routed = !is_no_route(response).await;
                assert_eq!(
                    routed,
                    described.contains(&method),
                    "{method} {template}: the router and the description disagree (described: {described:?})"
                );
            }
        }
        // And nothing outside them.
        for path in ["/", "/v1", "/v1/", "/v1/drops/x/y/z", "/metrics", "/v2/info"] {
            assert!(is_no_route(client.get(format!("{base}{path}")).send().await.unwrap()).await, "{path}");
        }
    }

    #[tokio::test]
    async fn a_route_registered_past_the_description_is_refused() {
        let (_tmp, hub) = hub();
        let sneaky = crate::api::routes().route("/v1/sneaky", get(|| async { "served without a description" }));
        let base = serve(crate::api::with_layers(sneaky, hub)).await;
        let response = reqwest::get(format!("{base}/v1/sneaky")).await.unwrap();
        assert_eq!(response.status(), 500);
        let body: ErrorBody = response.json().await.unwrap();
        assert_eq!(body.error.code, code::INTERNAL);
        // The described routes are still served.
        assert_eq!(reqwest::get(format!("{base}/v1/info")).await.unwrap().status(), 200);
    }

    #[test]
    fn every_signed_operation_lists_the_signature_headers_and_its_401() {
        let mut signed = 0;
        for (template, item) in &description().paths.paths {
            for (method, op) in operations(item) {
                let json = serde_json::to_value(op).unwrap();
                assert!(json["responses"]["429"].is_object(), "{method} {template} has no 429");
                if !is_signed(op) {
                    assert!(json["responses"].get("401").is_none(), "{method} {template}: 401 without a signature");
                    continue;
                }
                signed += 1;
                let names: Vec<&str> =
                    json["parameters"].as_array().unwrap().iter().filter_map(|p| p["name"].as_str()).collect();
                for header in [HEADER_KEY, HEADER_TIME, HEADER_NONCE, HEADER_CONTENT, HEADER_SIGNATURE] {
                    assert!(names.contains(&header), "{method} {template} lacks {header}");
                }
                let unauthorized = json["responses"]["401"]["description"].as_str().unwrap();
                for code in SIGNATURE_CODES {
                    assert!(unauthorized.contains(&format!("`{code}`")), "{method} {template}: {code}");
                }
            }
        }
        assert_eq!(signed, 20, "the signed operations: 13, and the log's and the directory's 7 reads");
    }

    #[test]
    fn the_log_and_directory_reads_are_signed_unless_the_log_is_public() {
        let reads = |d: &OpenApi| -> Vec<(String, &'static str, bool, String)> {
            let mut out = Vec::new();
            for (template, item) in &d.paths.paths {
                for (method, op) in operations(item) {
                    let json = serde_json::to_value(op).unwrap();
                    if let Some(readers) = json.get(READABLE_BY) {
                        out.push((template.clone(), method, is_signed(op), readers.as_str().unwrap().to_owned()));
                    }
                }
            }
            out
        };
        let members = reads(description_for(LogAccess::Members));
        let public = reads(description_for(LogAccess::Public));
        let templates: Vec<&str> = members.iter().map(|(t, ..)| t.as_str()).collect();
        assert_eq!(
            templates,
            [
                "/v1/directory",
                "/v1/directory/{serial}",
                "/v1/log/checkpoint",
                "/v1/log/entry/{index}",
                "/v1/log/proof/consistency",
                "/v1/log/proof/inclusion",
                "/v1/log/tile/{path}",
            ]
        );
        for (template, method, signed, readers) in &members {
            assert_eq!(*method, "GET", "{template}");
            assert!(signed, "{template} is signed by default");
            assert_eq!(readers, readable_by(LogAccess::Members));
        }
        assert_eq!(public.len(), members.len());
        for (template, _, signed, readers) in &public {
            assert!(!signed, "{template} is public on a public log");
            assert_eq!(readers, readable_by(LogAccess::Public));
        }
        // Nothing else differs: the same routes, the other signed ones still signed.
        let public_json = serde_json::to_value(description_for(LogAccess::Public)).unwrap();
        let members_json = serde_json::to_value(description_for(LogAccess::Members)).unwrap();
        assert_eq!(public_json["paths"]["/v1/log/cosignature"], members_json["paths"]["/v1/log/cosignature"]);
        assert_eq!(
            public_json["paths"].as_object().unwrap().keys().collect::<Vec<_>>(),
            members_json["paths"].as_object().unwrap().keys().collect::<Vec<_>>()
        );
        assert!(public_json["paths"]["/v1/log/checkpoint"]["get"]["responses"].get("401").is_none());
    }

    #[test]
    fn every_reference_resolves_and_paths_are_openapi_templates() {
        let json = serde_json::to_value(description()).unwrap();
        let text = json.to_string();
        let schemas = &json["components"]["schemas"];
        for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap();
            assert!(schemas[name].is_object(), "dangling reference to {name}");
        }
        for path in description().paths.paths.keys() {
            assert!(!path.contains('*') && !path.contains(':'), "{path} is not an OpenAPI path template");
        }
        assert!(description().paths.paths.contains_key("/v1/log/tile/{path}"));
        assert_eq!(openapi_path("/v1/log/tile/{*path}"), "/v1/log/tile/{path}");
        // Ciphertexts are bytes, not arrays of numbers.
        let upload = &json["paths"]["/v1/drops/{id}/content"]["put"]["requestBody"]["content"];
        assert_eq!(upload["application/octet-stream"]["schema"]["format"], "binary", "{upload}");
        let download = &json["paths"]["/v1/drops/{id}/content"]["get"]["responses"]["200"]["content"];
        assert_eq!(download["application/octet-stream"]["schema"]["format"], "binary", "{download}");
    }
}
