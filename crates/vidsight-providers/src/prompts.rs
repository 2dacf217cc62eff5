//! What each feature asks a model for: one request covers every feature of an analysis (the
//! video's tokens are paid once), its answer one JSON object with a property per feature,
//! described by a standard JSON Schema (Gemini gets it converted by [`crate::schema`];
//! OpenAI-compatible servers take it as is).
//!
//! Times are asked for as `H:MM:SS` / `MM:SS` strings — what these models are trained to
//! write — and grounded afterwards ([`crate::grounding`]).

use serde_json::{json, Map, Value};
use vidsight_domain::ai::Feature;
use vidsight_domain::{AnalysisOptions, Error, ErrorCode, Result};

/// The system instruction of every analysis.
pub const SYSTEM: &str = "You are a meticulous video analyst. Describe only what is seen and \
heard in the video; never invent. Write every time as MM:SS or H:MM:SS from the start of the \
video, and only times inside it. Answer in JSON exactly as the response schema says.";

/// The system instruction of questions about a video.
pub const ASK_SYSTEM: &str = "You answer questions about one video. Base every statement on \
what is seen or heard, and cite the moments you rely on as [MM:SS] or [MM:SS-MM:SS] ranges \
(H:MM:SS past an hour). If the video does not show the answer, say so.";

fn time() -> Value {
    json!({"type": "string", "description": "MM:SS or H:MM:SS from the start of the video"})
}

/// The schema of one feature's part of the answer; `custom` is the user's.
pub fn feature_schema(feature: Feature, options: &AnalysisOptions) -> Value {
    match feature {
        Feature::Summary => json!({"type": "string",
            "description": "A factual summary of the whole video in 3 to 6 sentences"}),
        Feature::Chapters => {
            json!({"type": "array", "description": "Chapters in order, covering the video",
            "items": {"type": "object", "properties": {
                "title": {"type": "string"}, "start": time(), "end": time(),
                "summary": {"type": "string"}},
              "required": ["title", "start", "end"]}})
        }
        Feature::Transcript => {
            json!({"type": "array", "description": "Every stretch of speech, in order, verbatim",
            "items": {"type": "object", "properties": {
                "start": time(), "end": time(),
                "speaker": {"type": "string", "description": "Speaker 1, Speaker 2… or a name when one is said or shown"},
                "text": {"type": "string"}},
              "required": ["start", "end", "text"]}})
        }
        Feature::Labels => {
            json!({"type": "array", "description": "Objects, people, animals, places and activities seen, each with when",
            "items": {"type": "object", "properties": {
                "name": {"type": "string"},
                "category": {"type": "string", "enum": ["object", "person", "animal", "place", "activity", "other"]},
                "start": time(), "end": time(),
                "confidence": {"type": "number", "description": "0 to 1"}},
              "required": ["name", "start", "end"]}})
        }
        Feature::Text => {
            json!({"type": "array", "description": "Text visible on screen (titles, signs, captions burnt in), each with when",
            "items": {"type": "object", "properties": {
                "text": {"type": "string"}, "start": time(), "end": time()},
              "required": ["text", "start", "end"]}})
        }
        Feature::Topics => json!({"type": "object", "properties": {
                "topics": {"type": "array", "items": {"type": "string"}, "description": "3 to 8 broad topics"},
                "keywords": {"type": "array", "items": {"type": "string"}, "description": "5 to 20 specific keywords"}},
              "required": ["topics", "keywords"]}),
        Feature::Moderation => {
            json!({"type": "array", "description": "Content a platform may need to review; empty when there is none",
            "items": {"type": "object", "properties": {
                "category": {"type": "string", "enum": ["violence", "nudity", "sexual", "hate", "harassment", "self_harm", "drugs", "weapons", "profanity", "other"]},
                "severity": {"type": "string", "enum": ["low", "medium", "high"]},
                "start": time(), "end": time(),
                "reason": {"type": "string"}},
              "required": ["category", "severity", "start", "end"]}})
        }
        Feature::Custom => options
            .schema
            .clone()
            .unwrap_or_else(|| json!({"type": "string"})),
    }
}

/// What to say about each feature in the prompt.
fn feature_instruction(feature: Feature, options: &AnalysisOptions) -> String {
    match feature {
        Feature::Summary => "summary: what the video is about and what happens in it.".into(),
        Feature::Chapters => "chapters: split the video into meaningful chapters (a new chapter where the subject or setting changes), each with a short title, start, end and a one-sentence summary.".into(),
        Feature::Transcript => "transcript: everything said, verbatim, in segments of at most ~15 seconds, with who speaks; an empty list when nobody speaks.".into(),
        Feature::Labels => "labels: what is seen (objects, people, animals, places, activities), each with the time range where it is visible.".into(),
        Feature::Text => "text: the text shown on screen, each with the time range it is visible.".into(),
        Feature::Topics => "topics: the video's topics and keywords.".into(),
        Feature::Moderation => "moderation: anything violent, sexual, hateful, harassing, self-harming, drug-related, weapons or profanity, with its time range and severity.".into(),
        Feature::Custom => format!(
            "custom: {}",
            options.prompt.as_deref().unwrap_or("answer as the schema says")
        ),
    }
}

/// The answer schema and the prompt for a set of features. `custom` needs a prompt; its
/// schema, when given, must already be checked ([`crate::schema::check_user_schema`]).
pub fn build(features: &[Feature], options: &AnalysisOptions) -> Result<(Value, String)> {
    if features.is_empty() {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            "no features to ask for",
        ));
    }
    if features.contains(&Feature::Custom)
        && options
            .prompt
            .as_deref()
            .map(str::trim)
            .unwrap_or("")
            .is_empty()
    {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            "the custom feature needs a prompt (options.prompt)",
        ));
    }
    let mut properties = Map::new();
    let mut lines =
        vec!["Analyse the video and answer with one JSON object with these properties:".to_owned()];
    for &feature in features {
        properties.insert(feature.as_str().into(), feature_schema(feature, options));
        lines.push(format!("- {}", feature_instruction(feature, options)));
    }
    if let Some(language) = options.language.as_deref() {
        lines.push(format!(
            "Write titles, summaries and descriptions in the language `{language}` (the transcript stays in the language spoken)."
        ));
    }
    let required: Vec<&str> = features.iter().map(|feature| feature.as_str()).collect();
    let schema = json!({"type": "object", "properties": properties, "required": required});
    Ok((schema, lines.join("\n")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_property_per_feature_and_custom_needs_a_prompt() {
        let options = AnalysisOptions::default();
        let (schema, prompt) = build(&[Feature::Summary, Feature::Chapters], &options).unwrap();
        assert_eq!(schema["required"], json!(["summary", "chapters"]));
        assert_eq!(schema["properties"]["chapters"]["type"], "array");
        assert!(prompt.contains("chapters:"));
        crate::schema::check_user_schema(&schema).unwrap();
        let error = build(&[Feature::Custom], &options).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidInput);
        let options = AnalysisOptions {
            prompt: Some("Count the dogs".into()),
            schema: Some(json!({"type": "object", "properties": {"dogs": {"type": "integer"}}})),
            ..Default::default()
        };
        let (schema, prompt) = build(&[Feature::Custom], &options).unwrap();
        assert_eq!(
            schema["properties"]["custom"]["properties"]["dogs"]["type"],
            "integer"
        );
        assert!(prompt.contains("Count the dogs"));
        for feature in Feature::ALL {
            let (schema, _) = build(&[feature], &options).unwrap();
            crate::schema::to_gemini_schema(&schema).unwrap();
        }
    }
}
