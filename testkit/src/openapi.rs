//! Holds a tier's answers and router against its OpenAPI 3.1 document.
//!
//! [`Document::check`] says whether one answer is what the document promises
//! for its operation: a documented status, a documented content type, the
//! required headers, and a JSON body that validates against the schema.
//! [`Document::validate`] implements the JSON Schema keywords these documents
//! use, and fails on any other keyword, so nothing passes for want of a check.
//! [`routes_in_source`] lists the `.route(…)` calls of a router's source, and
//! the `async` helpers probe a router in-process (`oneshot`) the same way for
//! both tiers.

use std::collections::BTreeSet;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request};
use serde_json::{Map, Value};
use tower::ServiceExt;

/// Annotation keywords: they describe, they do not constrain.
const ANNOTATIONS: &[&str] = &[
    "description",
    "default",
    "examples",
    "example",
    "title",
    "format",
    "deprecated",
];

/// An OpenAPI 3.1 document.
pub struct Document(pub Value);

impl Document {
    /// Parses the document; it must be OpenAPI 3.1.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
        let version = v["openapi"].as_str().unwrap_or_default();
        if !version.starts_with("3.1.") {
            return Err(format!("openapi is {version:?}, not 3.1.x"));
        }
        Ok(Self(v))
    }

    /// Every (METHOD, path) the document lists, paths as written (`{param}`).
    pub fn operations(&self) -> Vec<(String, String)> {
        let mut ops = Vec::new();
        for (path, item) in self.0["paths"].as_object().into_iter().flatten() {
            for method in item.as_object().into_iter().flatten().map(|(m, _)| m) {
                ops.push((method.to_uppercase(), path.clone()));
            }
        }
        ops
    }

    /// The request body's schema name of an operation, if it takes one.
    pub fn request_schema(&self, method: &str, path: &str) -> Option<String> {
        let op = self.operation(method, path)?;
        let r = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str()?;
        r.rsplit('/').next().map(str::to_string)
    }

    /// Whether an operation asks for a key.
    pub fn is_protected(&self, method: &str, path: &str) -> bool {
        self.operation(method, path)
            .is_some_and(|op| op.get("security").is_some())
    }

    /// The operation object.
    pub fn operation(&self, method: &str, path: &str) -> Option<&Value> {
        self.0["paths"]
            .get(path)?
            .get(method.to_lowercase().as_str())
    }

    /// Whether an answer to `method path` is one the document promises.
    /// `header` looks a response header up by (lower-case) name.
    pub fn check(
        &self,
        method: &str,
        path: &str,
        status: u16,
        header: &dyn Fn(&str) -> Option<String>,
        body: &[u8],
    ) -> Result<(), String> {
        let op = self
            .operation(method, path)
            .ok_or_else(|| format!("{method} {path} is not documented"))?;
        let response = op["responses"]
            .get(status.to_string().as_str())
            .ok_or_else(|| format!("{method} {path} answered {status}, which is not documented"))?;
        let response = self.resolve(response)?;
        for (name, h) in response["headers"].as_object().into_iter().flatten() {
            let value = header(&name.to_lowercase());
            match value {
                None if h["required"] == true => {
                    return Err(format!("{method} {path} {status}: no {name} header"));
                }
                None => {}
                Some(v) => {
                    let parsed = serde_json::from_str(&v).unwrap_or(Value::String(v.clone()));
                    self.validate(&h["schema"], &parsed)
                        .map_err(|e| format!("{method} {path} {status}: header {name}: {e}"))?;
                }
            }
        }
        let content_type = header("content-type").unwrap_or_default();
        let media = content_type.split(';').next().unwrap_or("").trim();
        let content = &response["content"];
        let Some(c) = content.get(media) else {
            return Err(format!(
                "{method} {path} {status}: content type {content_type:?} is not one of {:?}",
                content
                    .as_object()
                    .map(|o| o.keys().collect::<Vec<_>>())
                    .unwrap_or_default()
            ));
        };
        if media == "application/json" {
            let v: Value = serde_json::from_slice(body)
                .map_err(|e| format!("{method} {path} {status}: body is not JSON: {e}"))?;
            self.validate(&c["schema"], &v).map_err(|e| {
                format!(
                    "{method} {path} {status}: {e}\nbody: {}",
                    String::from_utf8_lossy(body)
                )
            })?;
        }
        Ok(())
    }

    /// Validates `value` against the component schema `name`.
    pub fn validate_component(&self, name: &str, value: &Value) -> Result<(), String> {
        let schema = serde_json::json!({"$ref": format!("#/components/schemas/{name}")});
        self.validate(&schema, value)
    }

    fn resolve<'a>(&'a self, v: &'a Value) -> Result<&'a Value, String> {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let pointer = r
                    .strip_prefix('#')
                    .ok_or_else(|| format!("external $ref {r}"))?;
                self.0
                    .pointer(pointer)
                    .ok_or_else(|| format!("dangling $ref {r}"))
            }
            None => Ok(v),
        }
    }

    /// Validates `value` against `schema` (which may refer into the document).
    pub fn validate(&self, schema: &Value, value: &Value) -> Result<(), String> {
        self.at(schema, value, "$")
    }

    fn at(&self, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
        let s = match schema {
            Value::Bool(true) => return Ok(()),
            Value::Bool(false) => return Err(format!("{at}: nothing is allowed here")),
            Value::Object(s) => s,
            _ => return Err(format!("{at}: schema {schema} is not an object")),
        };
        for (key, kv) in s {
            match key.as_str() {
                "$ref" => self.at(self.resolve(schema)?, v, at)?,
                "type" => check_type(kv, v, at)?,
                "enum" => {
                    if !kv.as_array().is_some_and(|a| a.contains(v)) {
                        return Err(format!("{at}: {v} is not one of {kv}"));
                    }
                }
                "const" => {
                    if kv != v {
                        return Err(format!("{at}: {v} is not {kv}"));
                    }
                }
                "properties" | "required" | "additionalProperties" => {
                    if let Value::Object(o) = v {
                        self.object(s, key, o, at)?;
                    }
                }
                "propertyNames" => {
                    if let Value::Object(o) = v {
                        for name in o.keys() {
                            self.at(
                                kv,
                                &Value::String(name.clone()),
                                &format!("{at} key {name:?}"),
                            )?;
                        }
                    }
                }
                "items" => {
                    if let Value::Array(items) = v {
                        for (i, item) in items.iter().enumerate() {
                            self.at(kv, item, &format!("{at}[{i}]"))?;
                        }
                    }
                }
                "contains" => {
                    if let Value::Array(items) = v
                        && !items.iter().any(|item| self.at(kv, item, at).is_ok())
                    {
                        return Err(format!("{at}: no item matches {kv}"));
                    }
                }
                "minItems" | "maxItems" => {
                    if let Value::Array(a) = v {
                        bound(key, kv, a.len() as f64, at)?;
                    }
                }
                "minLength" | "maxLength" => {
                    if let Value::String(t) = v {
                        bound(key, kv, t.chars().count() as f64, at)?;
                    }
                }
                "minimum" | "maximum" => {
                    if let Some(n) = v.as_f64() {
                        bound(key, kv, n, at)?;
                    }
                }
                "allOf" => {
                    for part in kv.as_array().into_iter().flatten() {
                        self.at(part, v, at)?;
                    }
                }
                "anyOf" | "oneOf" => {
                    let parts = kv.as_array().map(Vec::as_slice).unwrap_or_default();
                    let errors: Vec<String> = parts
                        .iter()
                        .filter_map(|p| self.at(p, v, at).err())
                        .collect();
                    let passed = parts.len() - errors.len();
                    if passed == 0 || (key == "oneOf" && passed > 1) {
                        return Err(format!(
                            "{at}: {passed} of the {key} schemas match {v}: {}",
                            errors.join("; ")
                        ));
                    }
                }
                k if ANNOTATIONS.contains(&k) || k.starts_with("x-") => {}
                k => return Err(format!("{at}: the checker does not know the keyword {k:?}")),
            }
        }
        Ok(())
    }

    fn object(
        &self,
        s: &Map<String, Value>,
        key: &str,
        o: &Map<String, Value>,
        at: &str,
    ) -> Result<(), String> {
        let props = s.get("properties").and_then(Value::as_object);
        match key {
            "properties" => {
                for (name, p) in props.into_iter().flatten() {
                    if let Some(x) = o.get(name) {
                        self.at(p, x, &format!("{at}.{name}"))?;
                    }
                }
            }
            "required" => {
                for name in s[key].as_array().into_iter().flatten() {
                    let name = name.as_str().unwrap_or_default();
                    if !o.contains_key(name) {
                        return Err(format!("{at}: required key {name:?} is missing"));
                    }
                }
            }
            _ => {
                for (name, x) in o {
                    if props.is_none_or(|p| !p.contains_key(name)) {
                        self.at(&s[key], x, &format!("{at}.{name}"))?;
                    }
                }
            }
        }
        Ok(())
    }
}

fn check_type(t: &Value, v: &Value, at: &str) -> Result<(), String> {
    let is = |name: &str| match name {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "string" => v.is_string(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => false,
    };
    let ok = match t {
        Value::String(name) => is(name),
        Value::Array(names) => names.iter().filter_map(Value::as_str).any(is),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{at}: {v} is not of type {t}"))
    }
}

fn bound(key: &str, limit: &Value, n: f64, at: &str) -> Result<(), String> {
    let limit = limit
        .as_f64()
        .ok_or_else(|| format!("{at}: {key} is not a number"))?;
    let ok = if key.starts_with("min") {
        n >= limit
    } else {
        n <= limit
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{at}: {n} is outside {key} {limit}"))
    }
}

/// Holds the committed document (`path`, as the server embeds it) to the one
/// the types generate now. With `CEREBRUM_UPDATE_OPENAPI=1` it rewrites the
/// file instead (then rebuild: the server embeds it at compile time).
pub fn check_committed(generated: &Value, committed: &str, path: &str) -> Result<(), String> {
    if std::env::var_os("CEREBRUM_UPDATE_OPENAPI").is_some() {
        let text = serde_json::to_string_pretty(generated).map_err(|e| e.to_string())? + "\n";
        std::fs::write(path, text).map_err(|e| format!("{path}: {e}"))?;
        eprintln!("wrote {path}");
        return Ok(());
    }
    let committed: Value =
        serde_json::from_str(committed).map_err(|e| format!("{path} is not JSON: {e}"))?;
    if &committed == generated {
        return Ok(());
    }
    Err(format!(
        "{path} is not what the types and the route table generate now; \
         rewrite it with `CEREBRUM_UPDATE_OPENAPI=1 cargo test --release --test openapi`, \
         review the difference and commit it"
    ))
}

/// One answer of the router under test.
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl Answer {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// The error `code`, in either dialect.
    pub fn code(&self) -> Option<String> {
        let v: Value = serde_json::from_slice(&self.body).ok()?;
        let code = v.get("code").or_else(|| v["error"].get("code"))?;
        code.as_str().map(str::to_string)
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// Whether the document promises this answer to `method path`.
    pub fn check(&self, doc: &Document, method: &str, path: &str) -> Result<(), String> {
        doc.check(method, path, self.status, &|h| self.header(h), &self.body)
    }
}

/// Sends one request through the router, with `key` as `X-API-Key` when given.
pub async fn call(
    app: &Router,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: impl Into<Body>,
) -> Answer {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json");
    if let Some(k) = key {
        req = req.header("x-api-key", k);
    }
    let response = app
        .clone()
        .oneshot(req.body(body.into()).expect("request"))
        .await
        .expect("the router is infallible");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    Answer {
        status,
        headers,
        body,
    }
}

/// The router's `GET /openapi.json`, which must itself be as documented.
pub async fn document(app: &Router) -> Document {
    let a = call(app, "GET", "/openapi.json", None, Body::empty()).await;
    assert_eq!(a.status, 200, "GET /openapi.json");
    let doc = Document::parse(&a.body).expect("an OpenAPI 3.1 document");
    a.check(&doc, "GET", "/openapi.json")
        .expect("GET /openapi.json as documented");
    doc
}

/// A documented path with its parameters filled in (`{model}` → `x`).
pub fn concrete(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { "x" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

/// How the router and `source` (its `.route` calls) disagree with the document.
pub fn undocumented_routes(doc: &Document, source: &str) -> Vec<String> {
    let routed: BTreeSet<_> = routes_in_source(source).into_iter().collect();
    let documented: BTreeSet<_> = doc.operations().into_iter().collect();
    let mut out: Vec<String> = routed
        .difference(&documented)
        .map(|(m, p)| format!("{m} {p} is routed but not documented"))
        .collect();
    out.extend(
        documented
            .difference(&routed)
            .map(|(m, p)| format!("{m} {p} is documented but not in the router's source")),
    );
    out
}

/// Every documented operation must be routed (no `route_not_found`, no 405),
/// and every other method on a documented path must be a 405 whose body is
/// the path's dialect (`error_schema`).
pub async fn routing_mismatches(
    app: &Router,
    doc: &Document,
    key: Option<&str>,
    error_schema: &dyn Fn(&str) -> &'static str,
) -> Vec<String> {
    let documented: BTreeSet<_> = doc.operations().into_iter().collect();
    let paths: BTreeSet<String> = documented.iter().map(|(_, p)| p.clone()).collect();
    let mut out = Vec::new();
    for path in &paths {
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            let a = call(app, method, &concrete(path), key, "{}").await;
            let routed = a.status != 405 && a.code().as_deref() != Some("route_not_found");
            if routed != documented.contains(&(method.to_string(), path.clone())) {
                out.push(format!(
                    "{method} {path} answered {} {:?}",
                    a.status,
                    a.code()
                ));
            } else if !routed && let Err(e) = doc.validate_component(error_schema(path), &a.json())
            {
                out.push(format!("{method} {path} 405: {e}"));
            }
        }
    }
    out
}

/// Every operation that takes a body, sent the usual bad ones: each answer must
/// have the expected status and be as documented.
pub async fn bad_body_mismatches(
    app: &Router,
    doc: &Document,
    key: Option<&str>,
    max_body: usize,
) -> Vec<String> {
    let cases: [(&str, Vec<u8>, u16); 6] = [
        ("empty", b"".to_vec(), 400),
        ("malformed JSON", b"{\"prompt\": ".to_vec(), 400),
        ("not UTF-8", b"{\"prompt\": \"\xff\"}".to_vec(), 400),
        (
            "wrong types",
            br#"{"prompt": 1, "messages": 1}"#.to_vec(),
            422,
        ),
        ("missing fields", b"{}".to_vec(), 422),
        ("over the byte limit", vec![b' '; max_body + 1], 413),
    ];
    let mut out = Vec::new();
    for (method, path) in doc.operations() {
        if doc.request_schema(&method, &path).is_none() {
            continue;
        }
        for (what, body, status) in &cases {
            let a = call(app, &method, &concrete(&path), key, body.clone()).await;
            if a.status != *status {
                out.push(format!("{method} {path} {what}: {} not {status}", a.status));
            }
            if let Err(e) = a.check(doc, &method, &path) {
                out.push(format!("{what}: {e}"));
            }
        }
    }
    out
}

/// A route path given as `paths::NAME` or `NAME`, read from `pub const NAME: &str = "…";`
/// in the same source.
fn const_path<'s>(src: &'s str, args: &str) -> Option<&'s str> {
    let args = args.trim_start();
    let name = args.strip_prefix("paths::").unwrap_or(args);
    let name: String = name
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    let decl = format!("pub const {name}: &str = \"");
    let at = src.find(&decl)? + decl.len();
    src[at..].split('"').next()
}

/// The (METHOD, path) pairs of every `.route("path", get(…).post(…))` in a
/// router's source. Panics on a way of adding routes it does not read
/// (`nest`, `route_service`), so a route cannot slip past it.
pub fn routes_in_source(src: &str) -> Vec<(String, String)> {
    for unread in [".nest(", ".nest_service(", ".route_service("] {
        assert!(
            !src.contains(unread),
            "routes_in_source cannot read `{unread}`"
        );
    }
    let mut routes = Vec::new();
    for (start, _) in src.match_indices(".route(") {
        let rest = &src[start + ".route(".len()..];
        // The call's arguments, up to its closing parenthesis.
        let mut depth = 1;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                depth += match c {
                    '(' => 1,
                    ')' => -1,
                    _ => 0,
                };
                depth == 0
            })
            .map(|(i, _)| i)
            .expect("unclosed .route(");
        let args = &rest[..end];
        let path = args
            .trim_start()
            .strip_prefix('"')
            .and_then(|p| p.split('"').next())
            .or_else(|| const_path(src, args))
            .unwrap_or_else(|| panic!("a .route( whose path is neither a literal nor a constant (`NAME` or `paths::NAME`) of the same file: {args}"));
        let mut methods = 0;
        for m in ["get", "post", "put", "delete", "patch", "head", "options"] {
            for (i, _) in args.match_indices(&format!("{m}(")) {
                let before = args[..i].chars().last().unwrap_or(' ');
                if !before.is_alphanumeric() && before != '_' {
                    routes.push((m.to_uppercase(), path.to_string()));
                    methods += 1;
                }
            }
        }
        assert!(methods > 0, "no method found in .route({args})");
    }
    routes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Document {
        Document(json!({
            "openapi": "3.1.0",
            "components": {"schemas": {
                "E": {"type": "object", "required": ["error"], "properties": {
                    "error": {"type": "string"},
                    "n": {"type": ["integer", "null"], "minimum": 1},
                }},
                "U": {"oneOf": [{"type": "string", "minLength": 1}, {"type": "array", "maxItems": 1}]},
            }},
        }))
    }

    #[test]
    fn validates_and_names_what_is_wrong() {
        let d = doc();
        assert!(
            d.validate_component("E", &json!({"error": "x", "n": null}))
                .is_ok()
        );
        assert!(
            d.validate_component("E", &json!({"error": "x", "n": 3.0}))
                .is_ok()
        );
        let e = d.validate_component("E", &json!({"n": 2})).unwrap_err();
        assert!(e.contains("\"error\""), "{e}");
        assert!(d.validate_component("E", &json!({"error": 1})).is_err());
        assert!(
            d.validate_component("E", &json!({"error": "x", "n": 0}))
                .is_err()
        );
        assert!(d.validate_component("U", &json!("a")).is_ok());
        assert!(d.validate_component("U", &json!("")).is_err());
        assert!(d.validate_component("U", &json!(["a", "b"])).is_err());
    }

    #[test]
    fn unknown_keywords_fail() {
        let e = doc()
            .validate(&json!({"pattern": "x"}), &json!("x"))
            .unwrap_err();
        assert!(e.contains("pattern"));
    }

    #[test]
    fn reads_routes_and_their_methods() {
        let src = r#"Router::new()
            .route("/a", get(h::a))
            .route("/b/{x}", get(ops::b).post(ops::b))
            .route_layer(from_fn(x))"#;
        assert_eq!(
            routes_in_source(src),
            [("GET", "/a"), ("GET", "/b/{x}"), ("POST", "/b/{x}")]
                .map(|(m, p)| (m.to_string(), p.to_string()))
        );
    }
}
