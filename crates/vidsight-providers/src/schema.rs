//! User-supplied JSON Schemas for custom analyses, and the model answers checked against them.
//!
//! - [`check_user_schema`] refuses a schema before any money is spent on it: too big, too
//!   deep, not an object or array at the top, remote references, or not a JSON Schema at all.
//! - [`to_gemini_schema`] turns a checked schema into Gemini's `responseSchema` dialect (an
//!   OpenAPI 3.0 subset). The conversion only *guides* the model: keywords Gemini does not
//!   know are dropped, and [`validate`] then checks the answer against the user's original
//!   schema, so nothing the user asked for is lost.
//! - [`parse_model_json`] finds the JSON in what a model wrote (fences, prose, a cut-off
//!   answer) without repairing it.

use std::fmt;

use serde_json::{Map, Value};

/// The largest user schema accepted, serialized (64 KiB).
pub const MAX_SCHEMA_BYTES: usize = 64 * 1024;

/// The deepest JSON nesting accepted in a user schema: the top-level object is level 1 and
/// every object or array inside adds one (`{"properties":{"a":{"type":"string"}}}` is 3).
pub const MAX_SCHEMA_DEPTH: usize = 16;

/// At most this many validation errors are reported, plus one line counting the rest.
const MAX_REPORTED_ERRORS: usize = 10;

/// Beyond this many remaining errors validation stops counting.
const MAX_COUNTED_ERRORS: usize = 1000;

/// A validation message whose offending value serializes longer than this names it
/// "the value" instead of quoting it.
const MAX_QUOTED_VALUE_CHARS: usize = 80;

/// The most sub-schemas a Gemini schema may have once local `$ref`s are inlined.
const MAX_GEMINI_NODES: usize = 2000;

/// The deepest a Gemini schema may nest once local `$ref`s are inlined.
const MAX_GEMINI_DEPTH: usize = 32;

/// The longest chain of `$ref`s inside each other that is inlined for Gemini.
const MAX_NESTED_REFERENCES: usize = 64;

/// How many `{` / `[` positions [`parse_model_json`] tries before giving up.
const MAX_JSON_CANDIDATES: usize = 64;

/// Keywords whose value is one sub-schema.
const SINGLE_SCHEMA_KEYWORDS: [&str; 12] = [
    "additionalProperties",
    "additionalItems",
    "unevaluatedItems",
    "unevaluatedProperties",
    "contains",
    "propertyNames",
    "if",
    "then",
    "else",
    "not",
    "contentSchema",
    "items",
];

/// Keywords whose value is an array of sub-schemas.
const SCHEMA_LIST_KEYWORDS: [&str; 5] = ["allOf", "anyOf", "oneOf", "prefixItems", "items"];

/// Keywords whose value maps names to sub-schemas.
const SCHEMA_MAP_KEYWORDS: [&str; 6] = [
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
    "dependencies",
];

/// Checks a user-supplied JSON Schema for a custom analysis answer.
///
/// It must be a JSON object of at most [`MAX_SCHEMA_BYTES`] serialized and
/// [`MAX_SCHEMA_DEPTH`] levels deep, with a top-level `"type"` of `"object"` or `"array"`;
/// every `$ref` must be local (`"#"` or `"#/..."`, and `$dynamicRef`/`$recursiveRef` must
/// start with `#`); only the top level may have an `$id` (a nested one would change what
/// `#/...` means); and it must compile as a JSON Schema (draft from `$schema`, 2020-12 when
/// absent). The error says what to change.
pub fn check_user_schema(schema: &Value) -> Result<(), String> {
    let Value::Object(object) = schema else {
        return Err(format!(
            "the schema must be a JSON object, not {}",
            json_kind(schema)
        ));
    };
    let size = schema.to_string().len();
    if size > MAX_SCHEMA_BYTES {
        return Err(format!(
            "the schema is {size} bytes serialized and the limit is {MAX_SCHEMA_BYTES} (64 KiB): \
             shorten descriptions or define repeated parts once in \"$defs\" and use \"$ref\""
        ));
    }
    if let Some(path) = first_too_deep(schema, 1, String::new()) {
        return Err(format!(
            "the schema nests more than {MAX_SCHEMA_DEPTH} levels deep at {}: use fewer \
             levels, or move nested parts into \"$defs\" and refer to them with \"$ref\"",
            show_path(&path)
        ));
    }
    match object.get("type") {
        Some(Value::String(kind)) if kind == "object" || kind == "array" => {}
        Some(other) => {
            return Err(format!(
                "the top-level \"type\" must be \"object\" or \"array\", not {other}"
            ))
        }
        None => {
            return Err(
                "add \"type\": \"object\" (or \"array\") at the top level of the schema"
                    .to_string(),
            )
        }
    }
    check_references(schema, "", true)?;
    compile(schema).map(|_| ())
}

/// Validates a model's answer against the user's schema: `Ok`, or up to ten errors, each
/// `"at /path: message"` (`/` is the whole answer), plus one line counting the others.
/// A schema that does not compile (or has a remote `$ref`) gives one error saying so.
pub fn validate(schema: &Value, instance: &Value) -> Result<(), Vec<String>> {
    check_references(schema, "", true).map_err(|problem| vec![problem])?;
    let validator = compile(schema).map_err(|problem| vec![problem])?;
    let mut errors = Vec::new();
    let mut unreported = 0;
    for error in validator.iter_errors(instance) {
        if errors.len() < MAX_REPORTED_ERRORS {
            errors.push(describe_error(&error));
        } else {
            unreported += 1;
            if unreported >= MAX_COUNTED_ERRORS {
                break;
            }
        }
    }
    if unreported >= MAX_COUNTED_ERRORS {
        errors.push(format!("and at least {unreported} more errors"));
    } else if unreported > 0 {
        errors.push(format!(
            "and {unreported} more error{}",
            if unreported == 1 { "" } else { "s" }
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Compiles with the `jsonschema` crate. Remote references must have been refused before:
/// with default features off the crate cannot fetch them anyway.
fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::validator_for(schema).map_err(|error| {
        let location = error.instance_path.as_str();
        if location.is_empty() {
            format!("the schema is not a valid JSON Schema: {error}")
        } else {
            format!("the schema is not a valid JSON Schema at {location}: {error}")
        }
    })
}

fn describe_error(error: &jsonschema::ValidationError<'_>) -> String {
    let path = show_path(error.instance_path.as_str());
    let quoted_length = error.instance.to_string().chars().count();
    let message = if quoted_length > MAX_QUOTED_VALUE_CHARS {
        error.masked_with("the value").to_string()
    } else {
        error.to_string()
    };
    format!("at {path}: {message}")
}

/// The path of the first object or array nested deeper than [`MAX_SCHEMA_DEPTH`].
fn first_too_deep(value: &Value, depth: usize, path: String) -> Option<String> {
    let is_container = matches!(value, Value::Object(_) | Value::Array(_));
    if !is_container {
        return None;
    }
    if depth > MAX_SCHEMA_DEPTH {
        return Some(path);
    }
    match value {
        Value::Object(object) => object.iter().find_map(|(key, child)| {
            first_too_deep(child, depth + 1, format!("{path}/{}", escape_pointer(key)))
        }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(index, child)| first_too_deep(child, depth + 1, format!("{path}/{index}"))),
        _ => None,
    }
}

/// Refuses remote references and nested `$id`s, walking only real sub-schemas (a property
/// that happens to be named `$ref` is not a reference).
fn check_references(schema: &Value, path: &str, is_root: bool) -> Result<(), String> {
    let Value::Object(object) = schema else {
        return Ok(());
    };
    if let Some(reference) = object.get("$ref") {
        let local = reference
            .as_str()
            .is_some_and(|text| text == "#" || text.starts_with("#/"));
        if !local {
            return Err(format!(
                "the \"$ref\" {reference} at {} is not a local reference: only references \
                 into this schema such as \"#/$defs/name\" are allowed; copy the referenced \
                 schema into \"$defs\"",
                show_path(path)
            ));
        }
    }
    for keyword in ["$dynamicRef", "$recursiveRef"] {
        if let Some(reference) = object.get(keyword) {
            if !reference.as_str().is_some_and(|text| text.starts_with('#')) {
                return Err(format!(
                    "the \"{keyword}\" {reference} at {} is not a local reference: only \
                     references starting with \"#\" are allowed",
                    show_path(path)
                ));
            }
        }
    }
    if !is_root && object.contains_key("$id") {
        return Err(format!(
            "remove \"$id\" at {}: only the top level of the schema may have an \"$id\"",
            show_path(path)
        ));
    }
    for (child, child_path) in subschemas(object, path) {
        check_references(child, &child_path, false)?;
    }
    Ok(())
}

/// The sub-schemas of a schema object, with their JSON Pointer paths.
fn subschemas<'a>(object: &'a Map<String, Value>, path: &str) -> Vec<(&'a Value, String)> {
    let mut found = Vec::new();
    for keyword in SINGLE_SCHEMA_KEYWORDS {
        if let Some(child) = object.get(keyword) {
            if child.is_object() || child.is_boolean() {
                found.push((child, format!("{path}/{keyword}")));
            }
        }
    }
    for keyword in SCHEMA_LIST_KEYWORDS {
        if let Some(Value::Array(children)) = object.get(keyword) {
            for (index, child) in children.iter().enumerate() {
                found.push((child, format!("{path}/{keyword}/{index}")));
            }
        }
    }
    for keyword in SCHEMA_MAP_KEYWORDS {
        if let Some(Value::Object(children)) = object.get(keyword) {
            for (name, child) in children {
                if child.is_object() || child.is_boolean() {
                    found.push((child, format!("{path}/{keyword}/{}", escape_pointer(name))));
                }
            }
        }
    }
    found
}

/// Converts a checked JSON Schema into Gemini's `responseSchema` (OpenAPI 3.0 subset).
///
/// Kept or translated:
/// - `type` → upper case `STRING NUMBER INTEGER BOOLEAN ARRAY OBJECT` (`NULL` only for a
///   schema that allows nothing but null); `"type": [T, "null"]` → `T` + `nullable: true`;
///   several non-null types → `anyOf`, one entry per type;
/// - `properties` (with `propertyOrdering` = their order in the schema), `required` (names
///   not in `properties` are left out), `items`, `minItems`, `maxItems`, `description`
///   (`title` becomes the description when there is none);
/// - `enum` and `const` of strings (a `null` among them → `nullable`); `enum`/`const` of
///   other values are dropped (Gemini enums are strings only), keeping the inferred type;
/// - `format` only where Gemini documents it: `date-time` and `enum` on strings, `float`
///   and `double` on numbers, `int32` and `int64` on integers;
/// - `anyOf`/`oneOf` (as `anyOf`) on a schema without a type of its own; a null member
///   becomes `nullable`, a single remaining member is inlined; on a schema that has a type
///   (or `properties`/`items`/`enum` that imply one) they only narrow it and are dropped;
/// - `allOf` is merged into one schema (properties and required joined, conflicting types
///   refused);
/// - local `$ref`s (`#/$defs/...`, `#/definitions/...`, any `#/...` pointer) are inlined,
///   sibling keywords overriding the target's; a recursive `$ref` is refused.
///
/// Dropped (Gemini does not know them; [`validate`] still enforces them on the answer):
/// `$schema`, `$id`, `$defs`, `definitions`, `$comment`, `title`, `examples`, `default`,
/// `additionalProperties`, `patternProperties`, `pattern`, `minLength`, `maxLength`,
/// `minimum`, `maximum`, `exclusive*`, `multipleOf`, `uniqueItems`, `minProperties`,
/// `maxProperties`, `not`, `if`/`then`/`else`, `dependent*`, `contains`, `unevaluated*`,
/// `readOnly`/`writeOnly`/`deprecated` and anything unknown.
///
/// Refused, with the schema path: a schema without a type that cannot be inferred, an
/// `OBJECT` without `properties` (Gemini rejects those, so free-form maps cannot be asked
/// for), an `ARRAY` without a single `items` schema (tuples), boolean schemas, recursive or
/// dangling `$ref`s, and schemas that grow past 2000 sub-schemas or 32 levels once inlined.
pub fn to_gemini_schema(schema: &Value) -> Result<Value, String> {
    let mut converter = GeminiConverter {
        root: schema,
        reference_stack: Vec::new(),
        nodes: 0,
    };
    converter.convert(schema, "", 0)
}

struct GeminiConverter<'a> {
    root: &'a Value,
    /// the `$ref`s being inlined, outermost first: one seen again is a recursion
    reference_stack: Vec<String>,
    /// sub-schemas converted so far
    nodes: usize,
}

impl GeminiConverter<'_> {
    fn convert(&mut self, schema: &Value, path: &str, depth: usize) -> Result<Value, String> {
        self.nodes += 1;
        if self.nodes > MAX_GEMINI_NODES {
            return Err(format!(
                "the schema grows past {MAX_GEMINI_NODES} sub-schemas once its \"$ref\"s are \
                 inlined (at {}): Gemini needs every reference written out, so reuse fewer \
                 definitions",
                show_path(path)
            ));
        }
        if depth > MAX_GEMINI_DEPTH {
            return Err(format!(
                "the schema nests more than {MAX_GEMINI_DEPTH} levels once its \"$ref\"s are \
                 inlined (at {}): use fewer levels",
                show_path(path)
            ));
        }
        let object = match schema {
            Value::Object(object) => object,
            Value::Bool(true) => {
                return Err(format!(
                    "at {}: the schema `true` (any value) cannot be expressed for Gemini: give \
                     it a \"type\"",
                    show_path(path)
                ))
            }
            Value::Bool(false) => {
                return Err(format!(
                    "at {}: the schema `false` (no value allowed) cannot be expressed for \
                     Gemini: remove it",
                    show_path(path)
                ))
            }
            other => {
                return Err(format!(
                    "at {}: a schema must be an object, not {}",
                    show_path(path),
                    json_kind(other)
                ))
            }
        };
        if let Some(reference) = object.get("$ref") {
            return self.convert_reference(object, reference, path, depth);
        }
        if let Some(members) = object.get("allOf") {
            let (merged, references) = self.merge_all_of(object, members, path)?;
            // the members' own references stay "open" while the merge is converted, so a
            // member that leads back to itself is caught as recursion
            let open = self.reference_stack.len();
            self.reference_stack.extend(references);
            let converted = self.convert(&merged, path, depth);
            self.reference_stack.truncate(open);
            return converted;
        }

        let description = object
            .get("description")
            .or_else(|| object.get("title"))
            .and_then(Value::as_str);
        let Some((types, nullable)) = declared_types(object, path)? else {
            return self.convert_alternatives(object, description, path, depth);
        };
        let mut converted = match types.as_slice() {
            [] => Map::from_iter([("type".to_string(), Value::from("NULL"))]),
            [single] => self.convert_typed(object, single, path, depth)?,
            several => {
                let mut alternatives = Vec::with_capacity(several.len());
                for kind in several {
                    let typed = self.convert_typed(object, kind, path, depth)?;
                    alternatives.push(Value::Object(typed));
                }
                Map::from_iter([("anyOf".to_string(), Value::Array(alternatives))])
            }
        };
        if let Some(text) = description {
            converted.insert("description".to_string(), Value::from(text));
        }
        if nullable && !types.is_empty() {
            converted.insert("nullable".to_string(), Value::Bool(true));
        }
        Ok(Value::Object(converted))
    }

    fn convert_reference(
        &mut self,
        object: &Map<String, Value>,
        reference: &Value,
        path: &str,
        depth: usize,
    ) -> Result<Value, String> {
        let Some(text) = reference.as_str().filter(|text| text.starts_with('#')) else {
            return Err(format!(
                "at {}: the \"$ref\" {reference} is not a local reference (\"#/...\")",
                show_path(path)
            ));
        };
        if self.reference_stack.iter().any(|seen| seen == text) {
            return Err(format!(
                "at {}: the \"$ref\" \"{text}\" refers back to itself (through {}); Gemini's \
                 responseSchema cannot express recursive schemas: write out a fixed number of \
                 levels instead",
                show_path(path),
                self.reference_stack.join(" → ")
            ));
        }
        if self.reference_stack.len() >= MAX_NESTED_REFERENCES {
            return Err(format!(
                "at {}: more than {MAX_NESTED_REFERENCES} \"$ref\"s lead into each other here: \
                 shorten the chain",
                show_path(path)
            ));
        }
        let pointer = percent_decode(&text[1..]);
        let Some(target) = self.root.pointer(&pointer) else {
            return Err(format!(
                "at {}: the \"$ref\" \"{text}\" points to nothing in the schema",
                show_path(path)
            ));
        };
        let merged = match target {
            Value::Object(target_object) => {
                let mut merged = target_object.clone();
                for (key, value) in object {
                    if key != "$ref" {
                        merged.insert(key.clone(), value.clone());
                    }
                }
                Value::Object(merged)
            }
            other => other.clone(),
        };
        self.reference_stack.push(text.to_string());
        let converted = self.convert(&merged, &pointer, depth);
        self.reference_stack.pop();
        converted
    }

    /// One schema from `allOf` and the keywords beside it: properties and required joined,
    /// the first value of any other keyword kept.
    fn merge_all_of(
        &mut self,
        object: &Map<String, Value>,
        members: &Value,
        path: &str,
    ) -> Result<(Value, Vec<String>), String> {
        let Value::Array(members) = members else {
            return Err(format!(
                "at {}: \"allOf\" must be an array",
                show_path(path)
            ));
        };
        let mut merged = object.clone();
        merged.shift_remove("allOf");
        let mut references = Vec::new();
        for (index, member) in members.iter().enumerate() {
            let member_path = format!("{path}/allOf/{index}");
            let (member, followed) = self.resolve_top_reference(member, &member_path)?;
            references.extend(followed);
            let Value::Object(member) = member else {
                return Err(format!(
                    "at {}: an \"allOf\" member must be an object schema",
                    show_path(&member_path)
                ));
            };
            for (key, value) in member {
                match (key.as_str(), merged.get_mut(&key)) {
                    (_, None) => {
                        merged.insert(key, value);
                    }
                    ("properties", Some(Value::Object(existing))) => {
                        if let Value::Object(more) = value {
                            for (name, property) in more {
                                existing.entry(name).or_insert(property);
                            }
                        }
                    }
                    ("required", Some(Value::Array(existing))) => {
                        if let Value::Array(more) = value {
                            for name in more {
                                if !existing.contains(&name) {
                                    existing.push(name);
                                }
                            }
                        }
                    }
                    ("type", Some(existing)) if *existing != value => {
                        return Err(format!(
                            "at {}: the \"allOf\" members disagree on \"type\" ({existing} \
                             and {value}): give them one type",
                            show_path(path)
                        ));
                    }
                    _ => {}
                }
            }
        }
        Ok((Value::Object(merged), references))
    }

    /// Follows a member's own top-level `$ref` chain (its nested ones are inlined later).
    fn resolve_top_reference(
        &self,
        member: &Value,
        path: &str,
    ) -> Result<(Value, Vec<String>), String> {
        let mut current = member.clone();
        let mut seen: Vec<String> = Vec::new();
        while let Some(reference) = current.get("$ref").cloned() {
            let Some(text) = reference.as_str().filter(|text| text.starts_with('#')) else {
                return Err(format!(
                    "at {}: the \"$ref\" {reference} is not a local reference (\"#/...\")",
                    show_path(path)
                ));
            };
            let recursive = seen.iter().chain(&self.reference_stack).any(|s| s == text);
            if recursive {
                return Err(format!(
                    "at {}: the \"$ref\" \"{text}\" refers back to itself; Gemini's \
                     responseSchema cannot express recursive schemas",
                    show_path(path)
                ));
            }
            seen.push(text.to_string());
            let pointer = percent_decode(&text[1..]);
            let Some(Value::Object(target)) = self.root.pointer(&pointer) else {
                return Err(format!(
                    "at {}: the \"$ref\" \"{text}\" points to no object schema",
                    show_path(path)
                ));
            };
            let mut merged = target.clone();
            if let Value::Object(siblings) = &current {
                for (key, value) in siblings {
                    if key != "$ref" {
                        merged.insert(key.clone(), value.clone());
                    }
                }
            }
            current = Value::Object(merged);
        }
        Ok((current, seen))
    }

    /// `anyOf`/`oneOf` on a schema without a type of its own.
    fn convert_alternatives(
        &mut self,
        object: &Map<String, Value>,
        description: Option<&str>,
        path: &str,
        depth: usize,
    ) -> Result<Value, String> {
        let (keyword, members) = match (object.get("anyOf"), object.get("oneOf")) {
            (Some(_), Some(_)) => {
                return Err(format!(
                    "at {}: use either \"anyOf\" or \"oneOf\" here, not both",
                    show_path(path)
                ))
            }
            (Some(members), None) => ("anyOf", members),
            (None, Some(members)) => ("oneOf", members),
            (None, None) => {
                return Err(format!(
                    "at {}: add a \"type\": Gemini's responseSchema needs one on every schema",
                    show_path(path)
                ))
            }
        };
        let Value::Array(members) = members else {
            return Err(format!(
                "at {}: \"{keyword}\" must be an array",
                show_path(path)
            ));
        };
        let mut nullable = false;
        let mut alternatives = Vec::new();
        for (index, member) in members.iter().enumerate() {
            if is_null_schema(member) {
                nullable = true;
                continue;
            }
            let member_path = format!("{path}/{keyword}/{index}");
            alternatives.push(self.convert(member, &member_path, depth + 1)?);
        }
        let mut converted = match alternatives.len() {
            0 => Map::from_iter([("type".to_string(), Value::from("NULL"))]),
            1 => match alternatives.pop() {
                Some(Value::Object(only)) => only,
                _ => Map::new(),
            },
            _ => Map::from_iter([("anyOf".to_string(), Value::Array(alternatives))]),
        };
        if let Some(text) = description {
            converted.insert("description".to_string(), Value::from(text));
        }
        let only_null = converted.get("type") == Some(&Value::from("NULL"));
        if nullable && !only_null {
            converted.insert("nullable".to_string(), Value::Bool(true));
        }
        Ok(Value::Object(converted))
    }

    /// The keywords of one (non-null) JSON type.
    fn convert_typed(
        &mut self,
        object: &Map<String, Value>,
        kind: &str,
        path: &str,
        depth: usize,
    ) -> Result<Map<String, Value>, String> {
        let gemini_type = match kind {
            "string" => "STRING",
            "number" => "NUMBER",
            "integer" => "INTEGER",
            "boolean" => "BOOLEAN",
            "array" => "ARRAY",
            "object" => "OBJECT",
            other => {
                return Err(format!(
                    "at {}: unknown \"type\" \"{other}\"",
                    show_path(path)
                ))
            }
        };
        let mut converted = Map::new();
        converted.insert("type".to_string(), Value::from(gemini_type));
        if let Some(format) = object.get("format").and_then(Value::as_str) {
            let known = match kind {
                "string" => ["date-time", "enum"].contains(&format),
                "number" => ["float", "double"].contains(&format),
                "integer" => ["int32", "int64"].contains(&format),
                _ => false,
            };
            if known {
                converted.insert("format".to_string(), Value::from(format));
            }
        }
        match kind {
            "string" => {
                let strings: Vec<Value> = enum_values(object)
                    .into_iter()
                    .filter(Value::is_string)
                    .collect();
                if !strings.is_empty() {
                    converted.insert("enum".to_string(), Value::Array(strings));
                }
            }
            "object" => self.convert_properties(object, &mut converted, path, depth)?,
            "array" => self.convert_items(object, &mut converted, path, depth)?,
            _ => {}
        }
        Ok(converted)
    }

    fn convert_properties(
        &mut self,
        object: &Map<String, Value>,
        converted: &mut Map<String, Value>,
        path: &str,
        depth: usize,
    ) -> Result<(), String> {
        let properties = match object.get("properties") {
            Some(Value::Object(properties)) if !properties.is_empty() => properties,
            _ => {
                return Err(format!(
                    "at {}: an object needs at least one entry in \"properties\" for Gemini \
                     (free-form objects and \"additionalProperties\" maps cannot be asked for): \
                     list the fields you expect",
                    show_path(path)
                ))
            }
        };
        let mut converted_properties = Map::with_capacity(properties.len());
        for (name, property) in properties {
            let property_path = format!("{path}/properties/{}", escape_pointer(name));
            let value = self.convert(property, &property_path, depth + 1)?;
            converted_properties.insert(name.clone(), value);
        }
        converted.insert(
            "properties".to_string(),
            Value::Object(converted_properties),
        );
        if let Some(Value::Array(required)) = object.get("required") {
            let known: Vec<Value> = required
                .iter()
                .filter(|name| {
                    name.as_str()
                        .is_some_and(|name| properties.contains_key(name))
                })
                .cloned()
                .collect();
            if !known.is_empty() {
                converted.insert("required".to_string(), Value::Array(known));
            }
        }
        let ordering = properties.keys().cloned().map(Value::from).collect();
        converted.insert("propertyOrdering".to_string(), Value::Array(ordering));
        Ok(())
    }

    fn convert_items(
        &mut self,
        object: &Map<String, Value>,
        converted: &mut Map<String, Value>,
        path: &str,
        depth: usize,
    ) -> Result<(), String> {
        match object.get("items") {
            Some(items @ (Value::Object(_) | Value::Bool(_))) => {
                let items_path = format!("{path}/items");
                let value = self.convert(items, &items_path, depth + 1)?;
                converted.insert("items".to_string(), value);
            }
            Some(Value::Array(_)) => {
                return Err(format!(
                    "at {}: Gemini cannot express a tuple (\"items\" as a list): give \
                     \"items\" one schema for every element",
                    show_path(path)
                ))
            }
            _ if object.contains_key("prefixItems") => {
                return Err(format!(
                    "at {}: Gemini cannot express a tuple (\"prefixItems\"): give \"items\" one \
                     schema for every element",
                    show_path(path)
                ))
            }
            _ => {
                return Err(format!(
                    "at {}: an array needs an \"items\" schema for Gemini",
                    show_path(path)
                ))
            }
        }
        for keyword in ["minItems", "maxItems"] {
            if let Some(count) = object.get(keyword).and_then(Value::as_u64) {
                converted.insert(keyword.to_string(), Value::from(count));
            }
        }
        Ok(())
    }
}

/// The JSON types a schema declares or implies (without `"null"`) and whether null is
/// allowed; `None` when neither `type` nor `properties`/`items`/`enum`/`const` says.
fn declared_types(
    object: &Map<String, Value>,
    path: &str,
) -> Result<Option<(Vec<String>, bool)>, String> {
    let mut types: Vec<String> = Vec::new();
    let mut nullable = false;
    match object.get("type") {
        Some(Value::String(kind)) => types.push(kind.clone()),
        Some(Value::Array(kinds)) => {
            for kind in kinds {
                let Some(kind) = kind.as_str() else {
                    return Err(format!(
                        "at {}: \"type\" must hold strings",
                        show_path(path)
                    ));
                };
                if !types.iter().any(|seen| seen == kind) {
                    types.push(kind.to_string());
                }
            }
        }
        Some(other) => {
            return Err(format!(
                "at {}: \"type\" must be a string or a list of strings, not {other}",
                show_path(path)
            ))
        }
        None => {
            let values = enum_values(object);
            if object.contains_key("properties") {
                types.push("object".to_string());
            } else if object.contains_key("items") || object.contains_key("prefixItems") {
                types.push("array".to_string());
            } else if !values.is_empty() {
                for value in &values {
                    let kind = match value {
                        Value::Null => "null",
                        Value::Bool(_) => "boolean",
                        Value::String(_) => "string",
                        Value::Number(number) if number.is_f64() => "number",
                        Value::Number(_) => "integer",
                        Value::Array(_) | Value::Object(_) => {
                            return Err(format!(
                                "at {}: Gemini cannot express an \"enum\"/\"const\" of arrays or \
                                 objects: use strings",
                                show_path(path)
                            ))
                        }
                    };
                    if !types.iter().any(|seen| seen == kind) {
                        types.push(kind.to_string());
                    }
                }
                let has_number = types.iter().any(|kind| kind == "number");
                if has_number {
                    types.retain(|kind| kind != "integer");
                }
            } else {
                return Ok(None);
            }
        }
    }
    if types.iter().any(|kind| kind == "null") {
        nullable = true;
        types.retain(|kind| kind != "null");
    }
    Ok(Some((types, nullable)))
}

/// The values of `enum`, or the one of `const`.
fn enum_values(object: &Map<String, Value>) -> Vec<Value> {
    match (object.get("enum"), object.get("const")) {
        (Some(Value::Array(values)), _) => values.clone(),
        (_, Some(value)) => vec![value.clone()],
        _ => Vec::new(),
    }
}

/// `{"type": "null"}`, `{"const": null}` or `{"enum": [null]}`.
fn is_null_schema(schema: &Value) -> bool {
    let Value::Object(object) = schema else {
        return false;
    };
    match object.get("type") {
        Some(Value::String(kind)) => kind == "null",
        Some(Value::Array(kinds)) => kinds.iter().all(|kind| kind == "null"),
        Some(_) => false,
        None => {
            let values = enum_values(object);
            !values.is_empty() && values.iter().all(Value::is_null)
        }
    }
}

/// What went wrong when reading a model's JSON answer.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonProblem {
    /// no text at all (or only whitespace, fences or a reasoning block)
    Empty,
    /// the text ends inside a JSON value: the model stopped mid-way (MAX_TOKENS)
    Truncated,
    /// something else; serde's message (or ours) says what
    NotJson(String),
}

impl fmt::Display for JsonProblem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => formatter.write_str("the model answered with no text"),
            Self::Truncated => formatter.write_str(
                "the model's JSON answer is cut off (it probably reached its output token limit)",
            ),
            Self::NotJson(message) => {
                write!(formatter, "the model's answer is not valid JSON: {message}")
            }
        }
    }
}

impl std::error::Error for JsonProblem {}

/// Finds and parses the JSON in a model's answer.
///
/// In order: the whole text (after a leading BOM and a leading `<think>...</think>`
/// reasoning block) if it is JSON; else the first Markdown fence (```` ```json ````, opening
/// at the start of a line) that holds a `{` or `[`; else the first `{` or `[` from which a
/// JSON object or array parses (trailing prose is ignored; a start inside a value that
/// already failed is not retried, so a broken object never yields its inner array).
/// Nothing is repaired: text that ends inside a value (or inside the reasoning block) is
/// [`JsonProblem::Truncated`]; a fenced block that closes before its JSON does is
/// [`JsonProblem::NotJson`].
pub fn parse_model_json(text: &str) -> Result<Value, JsonProblem> {
    let text = text.trim_start_matches('\u{feff}').trim();
    if text.is_empty() {
        return Err(JsonProblem::Empty);
    }
    let text = match text.strip_prefix("<think>") {
        Some(thinking) => match thinking.find("</think>") {
            Some(end) => thinking[end + "</think>".len()..].trim(),
            None => return Err(JsonProblem::Truncated),
        },
        None => text,
    };
    if text.is_empty() {
        return Err(JsonProblem::Empty);
    }
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        return Ok(value);
    }
    let (region, closed) = match fenced_block(text) {
        Some((block, closed)) => (block, closed),
        None => (text, false),
    };
    if region.trim().is_empty() {
        return Err(JsonProblem::Empty);
    }

    let mut first_error: Option<serde_json::Error> = None;
    let mut end_of_input_error: Option<serde_json::Error> = None;
    let mut skip_until = 0;
    let candidates = region
        .char_indices()
        .filter(|(_, character)| *character == '{' || *character == '[')
        .map(|(index, _)| index);
    let mut attempts = 0;
    for start in candidates {
        if start < skip_until {
            continue;
        }
        attempts += 1;
        if attempts > MAX_JSON_CANDIDATES {
            break;
        }
        let candidate = &region[start..];
        let mut stream = serde_json::Deserializer::from_str(candidate).into_iter::<Value>();
        match stream.next() {
            Some(Ok(value)) => return Ok(value),
            Some(Err(error)) => {
                skip_until = start + error_offset(candidate, &error);
                if error.is_eof() {
                    end_of_input_error.get_or_insert(error);
                } else {
                    first_error.get_or_insert(error);
                }
            }
            None => {}
        }
    }
    match (end_of_input_error, first_error) {
        (Some(_), _) if !closed => Err(JsonProblem::Truncated),
        (Some(error), _) => Err(JsonProblem::NotJson(format!(
            "the fenced block ends before its JSON does ({error})"
        ))),
        (None, Some(error)) => Err(JsonProblem::NotJson(error.to_string())),
        (None, None) => Err(JsonProblem::NotJson(
            "there is no JSON object or array in the answer".to_string(),
        )),
    }
}

/// The inside of the first Markdown fence holding a `{` or `[`, and whether it is closed.
fn fenced_block(text: &str) -> Option<(&str, bool)> {
    let mut search_from = 0;
    while let Some(found) = text[search_from..].find("```") {
        let fence = search_from + found;
        let line_start = text[..fence].rfind('\n').map_or(0, |newline| newline + 1);
        let at_line_start = text[line_start..fence].trim().is_empty();
        let after_fence = fence + 3;
        let body_start = text[after_fence..]
            .find('\n')
            .map_or(text.len(), |newline| after_fence + newline + 1);
        if !at_line_start {
            search_from = after_fence;
            continue;
        }
        let (body, closed, next) = match text[body_start..].find("```") {
            Some(close) => (
                &text[body_start..body_start + close],
                true,
                body_start + close + 3,
            ),
            None => (&text[body_start..], false, text.len()),
        };
        if body.contains(['{', '[']) {
            return Some((body, closed));
        }
        if next >= text.len() {
            return None;
        }
        search_from = next;
    }
    None
}

/// The byte offset in `text` of a serde error (its line and column), for skipping.
fn error_offset(text: &str, error: &serde_json::Error) -> usize {
    let line_start = if error.line() <= 1 {
        0
    } else {
        text.match_indices('\n')
            .nth(error.line() - 2)
            .map_or(text.len(), |(index, _)| index + 1)
    };
    (line_start + error.column()).min(text.len()).max(1)
}

/// `~` → `~0`, `/` → `~1` (RFC 6901).
fn escape_pointer(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// Decodes `%XX` in a URI fragment; a malformed escape is kept as written.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' && index + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).ok();
            if let Some(byte) = hex.and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                decoded.push(byte);
                index += 3;
                continue;
            }
        }
        decoded.push(bytes[index]);
        index += 1;
    }
    String::from_utf8(decoded).unwrap_or_else(|_| text.to_string())
}

/// `/` for the whole document, else the pointer.
fn show_path(path: &str) -> &str {
    if path.is_empty() {
        "/"
    } else {
        path
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chapters_schema() -> Value {
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://vidsight.example/schemas/chapters.json",
            "title": "Chapters",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "chapters": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 50,
                    "items": {"$ref": "#/$defs/chapter"}
                },
                "language": {"type": ["string", "null"], "description": "BCP 47 tag"},
                "generated": {"type": "string", "format": "date-time"}
            },
            "required": ["chapters", "language"],
            "$defs": {
                "chapter": {
                    "type": "object",
                    "additionalProperties": false,
                    "properties": {
                        "start": {"type": "string", "pattern": "^\\d{2}:\\d{2}$", "description": "MM:SS"},
                        "title": {"type": "string", "minLength": 1, "examples": ["Intro"]},
                        "kind": {"enum": ["intro", "content", "outro"], "default": "content"},
                        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                        "speaker": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                        "source": {"const": "model"},
                        "index": {"type": "integer", "format": "int32"}
                    },
                    "required": ["start", "title"]
                }
            }
        })
    }

    #[test]
    fn check_user_schema_accepts_a_realistic_schema() {
        assert_eq!(check_user_schema(&chapters_schema()), Ok(()));
        assert_eq!(
            check_user_schema(&json!({"type": "array", "items": {"type": "string"}})),
            Ok(())
        );
        let legacy = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {"a": {"$ref": "#/definitions/a"}},
            "definitions": {"a": {"type": "string"}}
        });
        assert_eq!(check_user_schema(&legacy), Ok(()));
    }

    #[test]
    fn check_user_schema_refuses_what_it_must() {
        let cases = [
            (json!([1]), "must be a JSON object, not an array"),
            (json!("x"), "must be a JSON object, not a string"),
            (json!({"properties": {}}), "add \"type\": \"object\""),
            (json!({"type": "string"}), "must be \"object\" or \"array\", not \"string\""),
            (
                json!({"type": ["object", "null"]}),
                "must be \"object\" or \"array\"",
            ),
            (
                json!({"type": "object", "properties": {"a": {"$ref": "https://evil.example/s.json"}}}),
                "the \"$ref\" \"https://evil.example/s.json\" at /properties/a is not a local reference",
            ),
            (
                json!({"type": "object", "properties": {"a": {"$ref": "other.json#/x"}}}),
                "is not a local reference",
            ),
            (
                json!({"type": "object", "$defs": {"a": {"$id": "https://x.example/a", "type": "string"}}}),
                "remove \"$id\" at /$defs/a",
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "strnig"}}}),
                "the schema is not a valid JSON Schema at /properties/a/type",
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "string", "pattern": "("}}}),
                "not a valid JSON Schema",
            ),
            (
                json!({"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}}),
                "not a valid JSON Schema",
            ),
        ];
        for (schema, expected) in cases {
            let problem = check_user_schema(&schema).expect_err(&schema.to_string());
            assert!(problem.contains(expected), "{problem:?} lacks {expected:?}");
        }
    }

    #[test]
    fn check_user_schema_allows_a_property_named_ref() {
        let schema = json!({
            "type": "object",
            "properties": {"$ref": {"type": "string"}, "$id": {"type": "string"}}
        });
        assert_eq!(check_user_schema(&schema), Ok(()));
    }

    #[test]
    fn check_user_schema_limits_size_and_depth() {
        let long = "x".repeat(MAX_SCHEMA_BYTES);
        let big = json!({"type": "object", "description": long});
        let problem = check_user_schema(&big).unwrap_err();
        assert!(problem.contains("the limit is 65536 (64 KiB)"), "{problem}");

        // 1 (root) + 2 per nested property level
        let mut deep = json!({"type": "string"});
        for _ in 0..8 {
            deep = json!({"type": "object", "properties": {"a": deep}});
        }
        let problem = check_user_schema(&deep).unwrap_err();
        assert!(problem.contains("more than 16 levels deep at /properties/a/properties/a/properties/a/properties/a/properties/a/properties/a/properties/a/properties/a"), "{problem}");

        let mut fits = json!({"type": "string"});
        for _ in 0..7 {
            fits = json!({"type": "object", "properties": {"a": fits}});
        }
        assert_eq!(check_user_schema(&fits), Ok(()));
    }

    #[test]
    fn to_gemini_schema_converts_a_chapters_schema_field_by_field() {
        let gemini = to_gemini_schema(&chapters_schema()).unwrap();
        assert_eq!(gemini["type"], "OBJECT");
        assert_eq!(gemini["description"], "Chapters");
        assert_eq!(gemini["required"], json!(["chapters", "language"]));
        assert_eq!(
            gemini["propertyOrdering"],
            json!(["chapters", "language", "generated"])
        );
        for dropped in ["$schema", "$id", "$defs", "additionalProperties", "title"] {
            assert!(gemini.get(dropped).is_none(), "{dropped} kept");
        }

        let chapters = &gemini["properties"]["chapters"];
        assert_eq!(chapters["type"], "ARRAY");
        assert_eq!(chapters["minItems"], 1);
        assert_eq!(chapters["maxItems"], 50);

        assert_eq!(
            gemini["properties"]["language"],
            json!({"type": "STRING", "description": "BCP 47 tag", "nullable": true})
        );
        assert_eq!(
            gemini["properties"]["generated"],
            json!({"type": "STRING", "format": "date-time"})
        );

        let chapter = &chapters["items"];
        assert_eq!(chapter["type"], "OBJECT");
        assert_eq!(chapter["required"], json!(["start", "title"]));
        assert_eq!(
            chapter["propertyOrdering"],
            json!([
                "start",
                "title",
                "kind",
                "confidence",
                "speaker",
                "source",
                "index"
            ])
        );
        assert!(chapter.get("additionalProperties").is_none());
        let properties = &chapter["properties"];
        assert_eq!(
            properties["start"],
            json!({"type": "STRING", "description": "MM:SS"})
        );
        assert_eq!(properties["title"], json!({"type": "STRING"}));
        assert_eq!(
            properties["kind"],
            json!({"type": "STRING", "enum": ["intro", "content", "outro"]})
        );
        assert_eq!(properties["confidence"], json!({"type": "NUMBER"}));
        assert_eq!(
            properties["speaker"],
            json!({"type": "STRING", "nullable": true})
        );
        assert_eq!(
            properties["source"],
            json!({"type": "STRING", "enum": ["model"]})
        );
        assert_eq!(
            properties["index"],
            json!({"type": "INTEGER", "format": "int32"})
        );
        let keys: Vec<&String> = chapter.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["type", "properties", "required", "propertyOrdering"]);
    }

    #[test]
    fn to_gemini_schema_handles_unions_all_of_and_enums() {
        let schema = json!({
            "type": "object",
            "properties": {
                "value": {"type": ["string", "integer"], "enum": ["a", 1]},
                "shape": {
                    "description": "a circle or a square",
                    "oneOf": [
                        {"type": "object", "properties": {"radius": {"type": "number"}}},
                        {"type": "object", "properties": {"side": {"type": "number"}}},
                        {"type": "null"}
                    ]
                },
                "flags": {"enum": [true, false]},
                "level": {"enum": [1, 2, 3]},
                "ratio": {"enum": [1, 2.5, null]},
                "nothing": {"type": "null"},
                "merged": {
                    "allOf": [
                        {"$ref": "#/$defs/named"},
                        {"properties": {"age": {"type": "integer"}}, "required": ["age"]}
                    ]
                },
                "narrowed": {
                    "type": "object",
                    "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
                    "required": ["zzz", "b"],
                    "anyOf": [{"required": ["a"]}, {"required": ["b"]}]
                }
            },
            "$defs": {
                "named": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}},
                    "required": ["name"]
                }
            }
        });
        let gemini = to_gemini_schema(&schema).unwrap();
        let properties = &gemini["properties"];
        assert_eq!(
            properties["value"],
            json!({"anyOf": [{"type": "STRING", "enum": ["a"]}, {"type": "INTEGER"}]})
        );
        assert_eq!(
            properties["shape"],
            json!({
                "anyOf": [
                    {"type": "OBJECT", "properties": {"radius": {"type": "NUMBER"}}, "propertyOrdering": ["radius"]},
                    {"type": "OBJECT", "properties": {"side": {"type": "NUMBER"}}, "propertyOrdering": ["side"]}
                ],
                "description": "a circle or a square",
                "nullable": true
            })
        );
        assert_eq!(properties["flags"], json!({"type": "BOOLEAN"}));
        assert_eq!(properties["level"], json!({"type": "INTEGER"}));
        assert_eq!(
            properties["ratio"],
            json!({"type": "NUMBER", "nullable": true})
        );
        assert_eq!(properties["nothing"], json!({"type": "NULL"}));
        assert_eq!(
            properties["merged"],
            json!({
                "type": "OBJECT",
                "properties": {"name": {"type": "STRING"}, "age": {"type": "INTEGER"}},
                "required": ["name", "age"],
                "propertyOrdering": ["name", "age"]
            })
        );
        assert_eq!(
            properties["narrowed"],
            json!({
                "type": "OBJECT",
                "properties": {"a": {"type": "STRING"}, "b": {"type": "STRING"}},
                "required": ["b"],
                "propertyOrdering": ["a", "b"]
            })
        );
    }

    #[test]
    fn to_gemini_schema_inlines_shared_definitions_and_overrides_siblings() {
        let schema = json!({
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "from": {"$ref": "#/definitions/time", "description": "start"},
                    "to": {"$ref": "#/definitions/time"},
                    "odd name": {"$ref": "#/$defs/a~1b%20c"}
                }
            },
            "definitions": {"time": {"type": "number", "description": "seconds"}},
            "$defs": {"a/b c": {"type": "boolean"}}
        });
        let gemini = to_gemini_schema(&schema).unwrap();
        let properties = &gemini["items"]["properties"];
        assert_eq!(
            properties["from"],
            json!({"type": "NUMBER", "description": "start"})
        );
        assert_eq!(
            properties["to"],
            json!({"type": "NUMBER", "description": "seconds"})
        );
        assert_eq!(properties["odd name"], json!({"type": "BOOLEAN"}));
    }

    #[test]
    fn to_gemini_schema_refuses_what_gemini_cannot_express() {
        let cases = [
            (
                json!({
                    "type": "object",
                    "properties": {"root": {"$ref": "#/$defs/node"}},
                    "$defs": {"node": {
                        "type": "object",
                        "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/node"}}}
                    }}
                }),
                "at /$defs/node/properties/children/items: the \"$ref\" \"#/$defs/node\" refers back to itself",
            ),
            (
                json!({"type": "object", "properties": {"a": {"$ref": "#/$defs/nope"}}}),
                "at /properties/a: the \"$ref\" \"#/$defs/nope\" points to nothing",
            ),
            (
                json!({"type": "object", "properties": {"a": {"description": "anything"}}}),
                "at /properties/a: add a \"type\"",
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "object", "additionalProperties": {"type": "string"}}}}),
                "at /properties/a: an object needs at least one entry in \"properties\"",
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "array"}}}),
                "at /properties/a: an array needs an \"items\" schema",
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "array", "prefixItems": [{"type": "string"}]}}}),
                "cannot express a tuple",
            ),
            (
                json!({"type": "object", "properties": {"a": true}}),
                "at /properties/a: the schema `true`",
            ),
            (
                json!({"type": "object", "properties": {"a": {"allOf": [{"type": "string"}, {"type": "integer"}]}}}),
                "disagree on \"type\"",
            ),
            (
                json!({
                    "type": "object",
                    "properties": {"a": {"allOf": [{"$ref": "#/$defs/x"}]}},
                    "$defs": {"x": {"allOf": [{"$ref": "#/$defs/x"}]}}
                }),
                "refers back to itself",
            ),
            (
                json!({"type": "object", "properties": {"a": {"enum": [[1], [2]]}}}),
                "enum\"/\"const\" of arrays or objects",
            ),
        ];
        for (schema, expected) in cases {
            let problem = to_gemini_schema(&schema).expect_err(&schema.to_string());
            assert!(problem.contains(expected), "{problem:?} lacks {expected:?}");
        }
    }

    #[test]
    fn to_gemini_schema_refuses_exponential_expansion() {
        let mut definitions = Map::new();
        definitions.insert("d0".into(), json!({"type": "string"}));
        for level in 1..10 {
            let below = format!("#/$defs/d{}", level - 1);
            definitions.insert(
                format!("d{level}"),
                json!({"type": "object", "properties": {
                    "x": {"$ref": below}, "y": {"$ref": below}, "z": {"$ref": below}
                }}),
            );
        }
        let schema = json!({
            "type": "object",
            "properties": {"top": {"$ref": "#/$defs/d9"}},
            "$defs": definitions
        });
        assert_eq!(check_user_schema(&schema), Ok(()));
        let problem = to_gemini_schema(&schema).unwrap_err();
        assert!(problem.contains("grows past 2000 sub-schemas"), "{problem}");
    }

    #[test]
    fn to_gemini_schema_refuses_long_reference_chains() {
        let mut definitions = Map::new();
        for index in 0..200 {
            definitions.insert(
                format!("d{index}"),
                json!({"$ref": format!("#/$defs/d{}", index + 1)}),
            );
        }
        definitions.insert("d200".into(), json!({"type": "string"}));
        let schema = json!({
            "type": "object",
            "properties": {"a": {"$ref": "#/$defs/d0"}},
            "$defs": definitions
        });
        let problem = to_gemini_schema(&schema).unwrap_err();
        assert!(
            problem.contains("more than 64 \"$ref\"s lead into each other"),
            "{problem}"
        );
    }

    #[test]
    fn validate_reports_paths_and_caps_the_list() {
        let schema = chapters_schema();
        let good = json!({
            "chapters": [{"start": "00:00", "title": "Intro", "kind": "intro"}],
            "language": null
        });
        assert_eq!(validate(&schema, &good), Ok(()));

        let bad = json!({
            "chapters": [{"start": "0:00", "title": "", "kind": "middle", "extra": 1}],
            "language": 5
        });
        let errors = validate(&schema, &bad).unwrap_err();
        let text = errors.join("\n");
        for expected in [
            "at /chapters/0/start: \"0:00\" does not match",
            "at /chapters/0/title:",
            "at /chapters/0/kind:",
            "at /chapters/0:",
            "at /language: 5 is not of type",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
        let missing = validate(&schema, &json!({})).unwrap_err();
        assert!(
            missing.iter().all(|error| error.starts_with("at /: ")),
            "{missing:?}"
        );

        let many = json!({"type": "array", "items": {"type": "integer"}});
        let errors = validate(
            &many,
            &json!(["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"]),
        )
        .unwrap_err();
        assert_eq!(errors.len(), 11);
        assert_eq!(errors[10], "and 2 more errors");

        let long = "x".repeat(500);
        let errors = validate(&many, &json!([long])).unwrap_err();
        assert!(errors[0].len() < 120, "{errors:?}");
        assert!(errors[0].starts_with("at /0: "), "{errors:?}");

        let remote =
            json!({"type": "object", "properties": {"a": {"$ref": "https://x.example/s"}}});
        let errors = validate(&remote, &json!({})).unwrap_err();
        assert!(errors[0].contains("not a local reference"));
    }

    #[test]
    fn parse_model_json_finds_the_json() {
        let expected = json!({"chapters": [{"start": "00:00", "title": "Intro"}]});
        let cases = [
            r#"{"chapters": [{"start": "00:00", "title": "Intro"}]}"#.to_string(),
            "\u{feff}  {\"chapters\": [{\"start\": \"00:00\", \"title\": \"Intro\"}]}\n".to_string(),
            "```json\n{\"chapters\": [{\"start\": \"00:00\", \"title\": \"Intro\"}]}\n```".to_string(),
            "Here are the chapters:\n\n```JSON\n{\"chapters\": [{\"start\": \"00:00\", \"title\": \"Intro\"}]}\n```\nLet me know!".to_string(),
            "Sure [see below]: {\"chapters\": [{\"start\": \"00:00\", \"title\": \"Intro\"}]} Hope this helps.".to_string(),
            "<think>the user wants {chapters}</think>\n{\"chapters\": [{\"start\": \"00:00\", \"title\": \"Intro\"}]}".to_string(),
            "```\n{\"chapters\": [{\"start\": \"00:00\", \"title\": \"Intro\"}]}\n```".to_string(),
            "The answer is below.\n```text\nno json here\n```\n```json\n{\"chapters\": [{\"start\": \"00:00\", \"title\": \"Intro\"}]}\n```".to_string(),
        ];
        for text in cases {
            assert_eq!(parse_model_json(&text), Ok(expected.clone()), "{text:?}");
        }
        assert_eq!(parse_model_json("[1, 2]"), Ok(json!([1, 2])));
        assert_eq!(parse_model_json("\"just text\""), Ok(json!("just text")));
        assert_eq!(
            parse_model_json(r#"{"summary": "use ```code``` here"}"#),
            Ok(json!({"summary": "use ```code``` here"}))
        );
    }

    #[test]
    fn parse_model_json_names_the_problem() {
        assert_eq!(parse_model_json(""), Err(JsonProblem::Empty));
        assert_eq!(parse_model_json(" \n\t "), Err(JsonProblem::Empty));
        assert_eq!(
            parse_model_json("<think>hm</think>"),
            Err(JsonProblem::Empty)
        );
        for truncated in [
            r#"{"chapters": [{"start": "00:00", "title": "Intro"}, {"start": "01"#,
            "```json\n{\"chapters\": [",
            "Here you go: [1, 2,",
            "<think>still thinking about {",
            r#"{"a": "unterminated"#,
        ] {
            assert_eq!(
                parse_model_json(truncated),
                Err(JsonProblem::Truncated),
                "{truncated:?}"
            );
        }
        let Err(JsonProblem::NotJson(message)) = parse_model_json("I cannot help with that.")
        else {
            panic!("expected NotJson");
        };
        assert!(message.contains("no JSON object or array"), "{message}");
        let Err(JsonProblem::NotJson(message)) = parse_model_json(r#"{"a": [1, 2], "b": nope}"#)
        else {
            panic!("a broken object must not yield its inner array");
        };
        assert!(message.contains("line 1 column 21"), "{message}");
        let Err(JsonProblem::NotJson(message)) = parse_model_json("```json\n{\"a\": [1\n```")
        else {
            panic!("a closed fence is not a truncation");
        };
        assert!(
            message.contains("fenced block ends before its JSON does"),
            "{message}"
        );
        let Err(JsonProblem::NotJson(_)) = parse_model_json("{'a': 1}") else {
            panic!("single quotes are not JSON");
        };
        assert_eq!(
            JsonProblem::Truncated.to_string(),
            "the model's JSON answer is cut off (it probably reached its output token limit)"
        );
        assert_eq!(
            JsonProblem::NotJson("x".into()).to_string(),
            "the model's answer is not valid JSON: x"
        );
    }
}
