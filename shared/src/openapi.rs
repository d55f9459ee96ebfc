//! The OpenAPI 3.1 document of either tier (feature `openapi`), built from the
//! wire types' `ToSchema` derives and the tier's table of [`Operation`]s.
//!
//! Written here once for both tiers: which schemas exist, the request limits
//! they document (from [`crate::limits`]), what an error answer looks like in
//! each dialect (429 and 503 carry `Retry-After`), the two ways to present a key,
//! and the `/docs` page. Each tier lists its routes in its own `openapi.rs`, and
//! its tests hold that list against its router.

use std::collections::{BTreeMap, BTreeSet};

use http::Method;
use serde_json::{Map, Value, json};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;

use crate::error::{Dialect, ErrorCode, dialect_of};
use crate::limits::{
    DEFAULT_LANGUAGE, DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE, MAX_MESSAGES, MAX_PROMPT_CHARS,
    MAX_REPEAT_PENALTY, MAX_TEMPERATURE, MAX_TOKEN_PENALTY, MAX_TOKENS_NODE,
    MAX_TOKENS_ORCHESTRATOR, MAX_TOP_K, MIN_REPEAT_PENALTY,
};

/// A named schema, as `ToSchema` gives it.
pub type NamedSchema = (String, RefOr<Schema>);

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health checks, this document).
    Public,
    /// A key is required: `X-API-Key` or `Authorization: Bearer` (401 without, 403 wrong).
    Key,
    /// A key is required when the server is configured with client keys.
    OptionalKey,
}

/// What a successful (200) answer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Success {
    /// JSON of the named schema.
    Json(&'static str),
    /// JSON of the first schema when `stream` is false; Server-Sent Events whose
    /// `data:` lines hold the second when it is true.
    JsonOrEvents(&'static str, &'static str),
    /// Server-Sent Events whose `data:` lines hold the named schema.
    Events(&'static str),
    /// Prometheus text exposition.
    Metrics,
    /// An OpenAPI document (this one).
    Document,
    /// An HTML page.
    Html,
}

/// The error body a status is answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorBody {
    /// [`crate::error::CerebrumErrorBody`].
    Cerebrum,
    /// [`crate::error::OpenAiErrorBody`].
    OpenAi,
    /// Either (a route that passes an upstream's errors on in another dialect than its own).
    Either,
}

impl From<Dialect> for ErrorBody {
    fn from(d: Dialect) -> Self {
        match d {
            Dialect::Cerebrum => ErrorBody::Cerebrum,
            Dialect::OpenAi => ErrorBody::OpenAi,
        }
    }
}

/// One route and method, with what it takes and what it answers.
#[derive(Debug, Clone)]
pub struct Operation {
    /// HTTP method.
    pub method: Method,
    /// Path, parameters in braces (`/v1/unload/{model}`).
    pub path: &'static str,
    /// `operationId`.
    pub id: &'static str,
    /// Group shown in viewers.
    pub tag: &'static str,
    /// One line.
    pub summary: &'static str,
    /// More, in Markdown.
    pub description: &'static str,
    /// Who may call it.
    pub access: Access,
    /// The JSON request body's schema, when it takes one.
    pub request: Option<&'static str>,
    /// The 200 answer.
    pub success: Success,
    /// Error statuses and their bodies.
    pub errors: BTreeMap<u16, ErrorBody>,
}

impl Operation {
    /// A public operation answering `success`, errors in the path's dialect.
    pub fn new(method: Method, path: &'static str, id: &'static str, success: Success) -> Self {
        Self {
            method,
            path,
            id,
            tag: "",
            summary: "",
            description: "",
            access: Access::Public,
            request: None,
            success,
            errors: BTreeMap::new(),
        }
    }

    /// `GET path`.
    pub fn get(path: &'static str, id: &'static str, success: Success) -> Self {
        Self::new(Method::GET, path, id, success)
    }

    /// `POST path`.
    pub fn post(path: &'static str, id: &'static str, success: Success) -> Self {
        Self::new(Method::POST, path, id, success)
    }

    /// Tag, summary and description.
    pub fn doc(
        mut self,
        tag: &'static str,
        summary: &'static str,
        description: &'static str,
    ) -> Self {
        self.tag = tag;
        self.summary = summary;
        self.description = description;
        self
    }

    /// Who may call it; a key-protected operation can answer 401 and 403.
    pub fn access(mut self, access: Access) -> Self {
        self.access = access;
        if access != Access::Public {
            self = self.errors(&[401, 403]);
        }
        self
    }

    /// A JSON body of the named schema: malformed → 400, over the byte limit →
    /// 413, not sent as `application/json` → 415, a field missing, of the wrong
    /// type or out of range → 422.
    pub fn request(mut self, schema: &'static str) -> Self {
        self.request = Some(schema);
        self.errors(&[400, 413, 415, 422])
    }

    /// Error statuses answered in the path's dialect.
    pub fn errors(self, statuses: &[u16]) -> Self {
        let body = ErrorBody::from(dialect_of(self.path));
        self.errors_in(body, statuses)
    }

    /// Error statuses answered with `body` (merged to [`ErrorBody::Either`] when
    /// a status is already answered with the other).
    pub fn errors_in(mut self, body: ErrorBody, statuses: &[u16]) -> Self {
        for &status in statuses {
            let merged = match self.errors.get(&status) {
                Some(old) if *old != body => ErrorBody::Either,
                _ => body,
            };
            self.errors.insert(status, merged);
        }
        self
    }
}

/// One tier's API: its routes and what is particular to it.
#[derive(Clone)]
pub struct Api {
    /// `info.title`.
    pub title: &'static str,
    /// `info.version`.
    pub version: &'static str,
    /// `info.description`, Markdown.
    pub description: &'static str,
    /// Highest `max_tokens` the tier accepts on its OpenAI routes.
    pub openai_max_tokens: u32,
    /// Every route.
    pub operations: Vec<Operation>,
    /// Schemas of the tier's own answers (beyond the wire types).
    pub schemas: Vec<NamedSchema>,
    /// What this tier accepts differently from the shared refinements, applied
    /// after them: (schema, property, change).
    pub refinements: Vec<(&'static str, &'static str, Change)>,
}

impl Api {
    /// The whole document.
    pub fn document(&self) -> Value {
        let mut paths: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
        for op in &self.operations {
            paths
                .entry(op.path)
                .or_default()
                .insert(op.method.as_str().to_lowercase(), operation(op));
        }
        let mut schemas = Map::new();
        for (name, schema) in wire_schemas()
            .into_iter()
            .chain(self.schemas.iter().cloned())
        {
            schemas.insert(name, serde_json::to_value(schema).unwrap_or_default());
        }
        refine(&mut schemas, self.openai_max_tokens, &self.refinements);
        let mut doc = json!({
            "openapi": "3.1.0",
            "info": {
                "title": self.title,
                "version": self.version,
                "description": self.description,
                "license": {"name": "MIT OR Apache-2.0", "identifier": "MIT OR Apache-2.0"},
            },
            "paths": paths,
            "components": {
                "securitySchemes": {
                    "api_key": {"type": "apiKey", "in": "header", "name": crate::headers::API_KEY,
                        "description": "The key as `X-API-Key`."},
                    "bearer": {"type": "http", "scheme": "bearer",
                        "description": "The same key as `Authorization: Bearer …` (what OpenAI clients send)."},
                },
            },
        });
        doc["components"]["schemas"] = Value::Object(referenced(&doc, schemas));
        doc
    }
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn json_content(schema: Value) -> Value {
    json!({"application/json": {"schema": schema}})
}

/// A JSON value carried in a string (an SSE `data:` line).
fn json_in_string(schema: Value) -> Value {
    json!({"type": "string", "contentMediaType": "application/json", "contentSchema": schema})
}

/// A Server-Sent Events body, described one event at a time as OpenAPI 3.2 models
/// an event stream (and as tools read the `schema` of a 3.1 document): an object
/// whose `data` is the `data:` line. Cerebrum streams carry one `event` schema
/// per line; OpenAI streams carry chunks, an error body when generation fails
/// midway, and end with `[DONE]`.
fn events_content(event: &str, dialect: Dialect) -> Value {
    let (data, description) = match dialect {
        Dialect::Cerebrum => (
            json_in_string(schema_ref(event)),
            format!("One event: `data` is a `{event}` as JSON."),
        ),
        Dialect::OpenAi => (
            json!({"oneOf": [
                {"const": crate::sse::OPENAI_DONE},
                json_in_string(json!({"anyOf": [schema_ref(event), schema_ref("OpenAiErrorBody")]})),
            ]}),
            format!(
                "One event: `data` is a `{event}` as JSON, an `OpenAiErrorBody` when \
                generation fails midway, or `[DONE]`, the last."
            ),
        ),
    };
    json!({"text/event-stream": {"schema": {
        "type": "object",
        "description": description,
        "required": ["data"],
        "properties": {"data": data},
    }}})
}

fn success(s: Success, dialect: Dialect) -> Value {
    let (description, content) = match s {
        Success::Json(name) => ("OK", json_content(schema_ref(name))),
        Success::JsonOrEvents(name, event) => {
            let mut c = json_content(schema_ref(name));
            if let (Some(o), Value::Object(events)) =
                (c.as_object_mut(), events_content(event, dialect))
            {
                o.extend(events);
            }
            (
                "JSON when `stream` is false (the default); a Server-Sent Events stream when true.",
                c,
            )
        }
        Success::Events(event) => (
            "A Server-Sent Events stream.",
            events_content(event, dialect),
        ),
        Success::Metrics => (
            "Prometheus text exposition format 0.0.4.",
            json!({"text/plain": {"schema": {"type": "string"}}}),
        ),
        Success::Document => (
            "This OpenAPI 3.1 document.",
            json_content(json!({"type": "object", "required": ["openapi", "paths"]})),
        ),
        Success::Html => (
            "A page listing the operations (and a viewer loaded from a CDN when reachable).",
            json!({"text/html": {"schema": {"type": "string"}}}),
        ),
    };
    json!({"description": description, "content": content})
}

/// The codes a status is answered with, as `code` carries them.
fn codes_of(status: u16) -> Vec<String> {
    let all = <ErrorCode as utoipa::PartialSchema>::schema();
    let names = serde_json::to_value(all)
        .ok()
        .and_then(|v| v.get("enum").cloned())
        .and_then(|v| serde_json::from_value::<Vec<String>>(v).ok())
        .unwrap_or_default();
    names
        .into_iter()
        .filter(|n| {
            serde_json::from_value::<ErrorCode>(Value::String(n.clone()))
                .is_ok_and(|c| c != ErrorCode::Unknown && c.status() == status)
        })
        .collect()
}

fn error_response(status: u16, body: ErrorBody) -> Value {
    let schema = match body {
        ErrorBody::Cerebrum => schema_ref("CerebrumErrorBody"),
        ErrorBody::OpenAi => schema_ref("OpenAiErrorBody"),
        ErrorBody::Either => {
            json!({"anyOf": [schema_ref("CerebrumErrorBody"), schema_ref("OpenAiErrorBody")]})
        }
    };
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let codes = codes_of(status);
    let list = codes
        .iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let description = match codes.len() {
        0 => reason.to_string(),
        1 => format!("{reason}; `code` is {list}."),
        _ => format!("{reason}; `code` is one of {list}."),
    };
    let mut r = json!({"description": description, "content": json_content(schema)});
    if status == 429 || status == 503 {
        r["headers"] = json!({"Retry-After": {
            "description": "Seconds to wait before retrying.",
            "required": true,
            "schema": {"type": "integer", "minimum": 0},
        }});
    }
    r
}

fn operation(op: &Operation) -> Value {
    let mut responses = Map::new();
    responses.insert("200".into(), success(op.success, dialect_of(op.path)));
    for (&status, &body) in &op.errors {
        responses.insert(status.to_string(), error_response(status, body));
    }
    let mut o = json!({
        "operationId": op.id,
        "tags": [op.tag],
        "summary": op.summary,
        "description": op.description,
        "responses": responses,
    });
    let params: Vec<Value> = op
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    if !params.is_empty() {
        o["parameters"] = Value::Array(params);
    }
    if let Some(schema) = op.request {
        o["requestBody"] = json!({"required": true, "content": json_content(schema_ref(schema))});
    }
    match op.access {
        Access::Public => {}
        Access::Key => o["security"] = json!([{"api_key": []}, {"bearer": []}]),
        Access::OptionalKey => o["security"] = json!([{"api_key": []}, {"bearer": []}, {}]),
    }
    o
}

/// Every wire type's schema, with the schemas it refers to.
pub fn wire_schemas() -> Vec<NamedSchema> {
    use crate::{cerebrum as c, error as e, openai as o, prepare as p};
    fn add<T: utoipa::ToSchema>(v: &mut Vec<NamedSchema>) {
        v.push((T::name().into_owned(), T::schema()));
        T::schemas(v);
    }
    let mut v = Vec::new();
    add::<c::CompleteRequest>(&mut v);
    add::<c::CompleteResponse>(&mut v);
    add::<c::InferenceRequest>(&mut v);
    add::<c::InferenceResponse>(&mut v);
    add::<c::StreamEvent>(&mut v);
    add::<c::NodeHealth>(&mut v);
    add::<c::ModelsResponse>(&mut v);
    add::<c::OrchestratorHealth>(&mut v);
    add::<c::Ready>(&mut v);
    add::<c::TokenizeRequest>(&mut v);
    add::<c::TokenizeResponse>(&mut v);
    add::<o::ChatCompletionRequest>(&mut v);
    add::<o::CompletionRequest>(&mut v);
    add::<o::ChatCompletion>(&mut v);
    add::<o::ChatCompletionChunk>(&mut v);
    add::<o::TextCompletion>(&mut v);
    add::<p::PreparedPrompt>(&mut v);
    add::<e::CerebrumErrorBody>(&mut v);
    add::<e::OpenAiErrorBody>(&mut v);
    v
}

/// How a refinement changes a property's schema.
#[derive(Debug, Clone)]
pub enum Change {
    /// Adds (or overwrites) keywords.
    Merge(Value),
    /// Replaces the schema (keeping its description).
    Replace(Value),
}

/// What the handlers accept beyond the types serde reads: ranges and sizes,
/// from [`crate::limits`] and the node's sampler checks.
fn refinements(openai_max_tokens: u32) -> Vec<(&'static str, &'static str, Change)> {
    use Change::{Merge, Replace};
    // As written (0.2, not the f32's 0.20000000298…).
    let f32_json = |x: f32| {
        x.to_string()
            .parse::<f64>()
            .map_or(Value::Null, Value::from)
    };
    let temperature = || {
        Merge(json!({"minimum": 0.0, "maximum": f32_json(MAX_TEMPERATURE),
            "default": f32_json(DEFAULT_TEMPERATURE)}))
    };
    let tokens =
        |max: u32| Merge(json!({"minimum": 1, "maximum": max, "default": DEFAULT_MAX_TOKENS}));
    // The node's stop checks: at most 8 sequences of 1..=64 characters.
    let stop_item = json!({"type": "string", "minLength": 1, "maxLength": 64});
    let stop_list = json!({"type": ["array", "null"], "maxItems": 8, "items": stop_item});
    let non_empty = json!({"type": "string", "minLength": 1,
        "description": "Must hold a character other than white space (422 otherwise)."});
    let unit = json!({"minimum": 0.0, "maximum": 1.0});
    let top_k = json!({"minimum": 0, "maximum": MAX_TOP_K});
    let repeat_penalty = json!({"minimum": f32_json(MIN_REPEAT_PENALTY),
        "maximum": f32_json(MAX_REPEAT_PENALTY)});
    let penalty = json!({"minimum": f32_json(-MAX_TOKEN_PENALTY),
        "maximum": f32_json(MAX_TOKEN_PENALTY)});
    let empty_list = json!({"type": ["array", "null"], "maxItems": 0});
    let plain_choice = json!({"enum": ["none", "auto", null]});
    vec![
        (
            "CompleteRequest",
            "prompt",
            Merge(json!({"minLength": 1,
            "description": format!("The prompt: at least one character other than white space (422); \
                over the server's `max_prompt_chars` ({MAX_PROMPT_CHARS} by default) → 413. \
                Large code prompts are prepared (chunked, deduplicated, ranked).")})),
        ),
        (
            "CompleteRequest",
            "language",
            Merge(json!({"default": DEFAULT_LANGUAGE})),
        ),
        (
            "CompleteRequest",
            "max_tokens",
            tokens(MAX_TOKENS_ORCHESTRATOR),
        ),
        ("CompleteRequest", "temperature", temperature()),
        ("CompleteRequest", "stop", Merge(stop_list.clone())),
        ("InferenceRequest", "prompt", Merge(json!({"minLength": 1}))),
        ("InferenceRequest", "max_tokens", tokens(MAX_TOKENS_NODE)),
        ("InferenceRequest", "temperature", temperature()),
        ("InferenceRequest", "stop", Merge(stop_list)),
        // The sampler knobs: the same ranges under the same names on every route.
        ("SamplingExtras", "top_p", Merge(unit.clone())),
        ("SamplingExtras", "top_k", Merge(top_k.clone())),
        (
            "SamplingExtras",
            "repeat_penalty",
            Merge(repeat_penalty.clone()),
        ),
        (
            "SamplingExtras",
            "frequency_penalty",
            Merge(penalty.clone()),
        ),
        ("SamplingExtras", "presence_penalty", Merge(penalty.clone())),
        ("OpenAiSampling", "max_tokens", tokens(openai_max_tokens)),
        (
            "OpenAiSampling",
            "max_completion_tokens",
            tokens(openai_max_tokens),
        ),
        ("OpenAiSampling", "temperature", temperature()),
        ("OpenAiSampling", "top_p", Merge(unit)),
        ("OpenAiSampling", "top_k", Merge(top_k)),
        ("OpenAiSampling", "repeat_penalty", Merge(repeat_penalty)),
        (
            "OpenAiSampling",
            "frequency_penalty",
            Merge(penalty.clone()),
        ),
        ("OpenAiSampling", "presence_penalty", Merge(penalty)),
        // OpenAI fields not served: only the value that asks for nothing (422 otherwise).
        ("Unsupported", "n", Replace(json!({"enum": [1, null]}))),
        (
            "Unsupported",
            "best_of",
            Replace(json!({"enum": [1, null]})),
        ),
        (
            "Unsupported",
            "logit_bias",
            Replace(json!({"type": ["object", "null"], "maxProperties": 0})),
        ),
        (
            "Unsupported",
            "logprobs",
            Replace(json!({"enum": [false, null]})),
        ),
        (
            "Unsupported",
            "top_logprobs",
            Replace(json!({"enum": [0, null]})),
        ),
        (
            "Unsupported",
            "echo",
            Replace(json!({"enum": [false, null]})),
        ),
        (
            "Unsupported",
            "suffix",
            Replace(json!({"type": ["string", "null"], "maxLength": 0})),
        ),
        ("Unsupported", "tools", Replace(empty_list.clone())),
        ("Unsupported", "functions", Replace(empty_list)),
        ("Unsupported", "tool_choice", Replace(plain_choice.clone())),
        ("Unsupported", "function_call", Replace(plain_choice)),
        (
            "Unsupported",
            "response_format",
            Replace(json!({"oneOf": [
                {"type": "null"},
                {"type": "object", "required": ["type"], "properties": {"type": {"const": "text"}}},
            ]})),
        ),
        (
            "Unsupported",
            "modalities",
            Replace(json!({"type": ["array", "null"], "items": {"const": "text"}})),
        ),
        ("Unsupported", "audio", Replace(json!({"type": "null"}))),
        ("OpenAiSampling", "stream", Merge(json!({"default": false}))),
        (
            "StreamOptions",
            "include_usage",
            Merge(json!({"default": false})),
        ),
        (
            "OpenAiSampling",
            "stop",
            Replace(json!({"oneOf": [
                {"type": "null"},
                stop_item,
                {"type": "array", "maxItems": 8, "items": stop_item},
            ]})),
        ),
        // The messages' text, joined, must hold a character other than white space (422).
        (
            "ChatCompletionRequest",
            "messages",
            Merge(
                json!({"minItems": 1, "maxItems": MAX_MESSAGES, "contains": {
                    "type": "object",
                    "required": ["content"],
                    "properties": {"content": {"anyOf": [
                        {"type": "string", "minLength": 1},
                        {"type": "array", "contains": {
                            "type": "object",
                            "required": ["type", "text"],
                            "properties": {
                                "type": {"const": "text"},
                                "text": {"type": "string", "minLength": 1},
                            },
                        }},
                    ]}},
                }}),
            ),
        ),
        // Text parts only: an image, audio or file part is refused (422 naming it).
        ("ContentPart", "type", Merge(json!({"const": "text"}))),
        (
            "ChatMessage",
            "role",
            Merge(json!({"enum": ["system", "user", "assistant", "developer"]})),
        ),
        (
            "CompletionRequest",
            "prompt",
            Replace(json!({
                "description": "One prompt: a string, or a list holding exactly one string.",
                "oneOf": [non_empty, {"type": "array", "minItems": 1, "maxItems": 1, "items": non_empty}],
            })),
        ),
    ]
}

/// Applies [`refinements`] to the schemas present. A refinement naming a
/// property its schema lacks is a bug in this table: it panics (and the tests say so).
fn refine(
    schemas: &mut Map<String, Value>,
    openai_max_tokens: u32,
    tier: &[(&'static str, &'static str, Change)],
) {
    for (schema, field, change) in refinements(openai_max_tokens)
        .into_iter()
        .chain(tier.iter().cloned())
    {
        let Some(s) = schemas.get_mut(schema) else {
            continue;
        };
        let prop = property_mut(s, field)
            .unwrap_or_else(|| panic!("openapi: schema {schema} has no property {field}"));
        match change {
            Change::Merge(keys) => {
                if let (Some(p), Some(k)) = (prop.as_object_mut(), keys.as_object()) {
                    p.extend(k.clone());
                }
            }
            Change::Replace(mut new) => {
                if let (Some(d), None) = (prop.get("description"), new.get("description")) {
                    new["description"] = d.clone();
                }
                *prop = new;
            }
        }
    }
}

/// A property of an object schema, or of one of its `allOf` parts (flattened fields).
fn property_mut<'a>(schema: &'a mut Value, field: &str) -> Option<&'a mut Value> {
    if schema.pointer(&format!("/properties/{field}")).is_some() {
        return schema.pointer_mut(&format!("/properties/{field}"));
    }
    schema
        .get_mut("allOf")?
        .as_array_mut()?
        .iter_mut()
        .find_map(|part| property_mut(part, field))
}

/// The schemas the rest of the document refers to, directly or through others.
fn referenced(doc: &Value, mut all: Map<String, Value>) -> Map<String, Value> {
    let mut keep = BTreeSet::new();
    let mut todo = Vec::new();
    collect_refs(doc, &mut todo);
    while let Some(name) = todo.pop() {
        if keep.insert(name.clone())
            && let Some(s) = all.get(&name)
        {
            collect_refs(s, &mut todo);
        }
    }
    all.retain(|name, _| keep.contains(name));
    all
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            if let Some(name) = o
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
            {
                out.push(name.to_string());
            }
            o.values().for_each(|x| collect_refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

/// A JSON `null` (`logprobs`, which is always null).
pub fn null_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Null)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api() -> Api {
        Api {
            title: "t",
            version: "0",
            description: "",
            openai_max_tokens: 7,
            operations: vec![
                Operation::post(
                    "/v1/chat/completions",
                    "chat",
                    Success::Json("ChatCompletion"),
                )
                .request("ChatCompletionRequest")
                .access(Access::Key)
                .errors(&[503]),
                Operation::post(
                    "/v1/complete",
                    "complete",
                    Success::Json("CompleteResponse"),
                )
                .request("CompleteRequest")
                .errors(&[503])
                .errors_in(ErrorBody::OpenAi, &[503]),
                Operation::post(
                    "/v1/inference",
                    "inference",
                    Success::Json("InferenceResponse"),
                )
                .request("InferenceRequest"),
                Operation::post(
                    "/v1/completions",
                    "completions",
                    Success::Json("TextCompletion"),
                )
                .request("CompletionRequest"),
            ],
            schemas: vec![],
            refinements: vec![],
        }
    }

    #[test]
    fn every_refinement_finds_its_property() {
        // All wire schemas are present before pruning: each entry must apply.
        let mut schemas = Map::new();
        for (name, s) in wire_schemas() {
            schemas.insert(name, serde_json::to_value(s).unwrap());
        }
        for (schema, _, _) in refinements(1) {
            assert!(schemas.contains_key(schema), "no schema {schema}");
        }
        refine(&mut schemas, 1, &[]);
    }

    #[test]
    fn limits_come_from_the_limits_module() {
        let doc = api().document();
        let s = &doc["components"]["schemas"];
        let complete = property_mut(&mut s["CompleteRequest"].clone(), "max_tokens").cloned();
        assert_eq!(complete.unwrap()["maximum"], MAX_TOKENS_ORCHESTRATOR);
        let default = property_mut(&mut s["InferenceRequest"].clone(), "max_tokens").cloned();
        assert_eq!(
            default.unwrap()["default"],
            crate::limits::DEFAULT_MAX_TOKENS
        );
        let openai = property_mut(&mut s["OpenAiSampling"].clone(), "max_tokens").cloned();
        assert_eq!(openai.unwrap()["maximum"], 7);
    }

    #[test]
    fn errors_follow_the_dialect_and_say_when_to_retry() {
        let doc = api().document();
        let chat = &doc["paths"]["/v1/chat/completions"]["post"]["responses"];
        assert_eq!(
            chat["401"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/OpenAiErrorBody"
        );
        assert_eq!(chat["503"]["headers"]["Retry-After"]["required"], true);
        assert!(
            chat["503"]["description"]
                .as_str()
                .unwrap()
                .contains("`cm4_busy`")
        );
        let complete = &doc["paths"]["/v1/complete"]["post"]["responses"];
        assert_eq!(
            complete["422"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/CerebrumErrorBody"
        );
        assert!(complete["503"]["content"]["application/json"]["schema"]["anyOf"].is_array());
        assert!(
            complete.get("401").is_none(),
            "a public route answers no 401"
        );
    }

    #[test]
    fn only_referenced_schemas_are_kept() {
        let doc = api().document();
        let s = doc["components"]["schemas"].as_object().unwrap();
        assert!(s.contains_key("ChatMessage") && s.contains_key("ErrorCode"));
        assert!(!s.contains_key("NodeHealth") && !s.contains_key("StreamEvent"));
    }
}
