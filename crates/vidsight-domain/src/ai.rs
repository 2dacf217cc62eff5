//! What analysis providers (the local analyzer, Gemini, OpenAI-compatible models) are asked
//! for, and what they add to the insights document. Every generated item says where it came
//! from (`source`, `model`), so a merged document stays auditable.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Who produced an insight.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The built-in analyzer (ffmpeg, Tesseract).
    #[default]
    Local,
    /// Google's Gemini API.
    Gemini,
    /// An OpenAI-compatible chat-completions endpoint (Ollama, vLLM, LM Studio, OpenRouter…).
    Openai,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Local => "local",
            Source::Gemini => "gemini",
            Source::Openai => "openai",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "local" => Some(Source::Local),
            "gemini" => Some(Source::Gemini),
            "openai" => Some(Source::Openai),
            _ => None,
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a provider can be asked for.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    Summary,
    Chapters,
    Transcript,
    Labels,
    /// On-screen text.
    Text,
    /// Topics and keywords.
    Topics,
    Moderation,
    /// The user's own prompt, answered in the user's JSON Schema.
    Custom,
}

impl Feature {
    pub const ALL: [Feature; 8] = [
        Feature::Summary,
        Feature::Chapters,
        Feature::Transcript,
        Feature::Labels,
        Feature::Text,
        Feature::Topics,
        Feature::Moderation,
        Feature::Custom,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Feature::Summary => "summary",
            Feature::Chapters => "chapters",
            Feature::Transcript => "transcript",
            Feature::Labels => "labels",
            Feature::Text => "text",
            Feature::Topics => "topics",
            Feature::Moderation => "moderation",
            Feature::Custom => "custom",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Feature::ALL
            .into_iter()
            .find(|feature| feature.as_str() == text.trim())
    }
}

/// How finely Gemini looks at each sampled frame (tokens per frame: 66 low, 258 otherwise).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MediaResolution {
    Low,
    Medium,
    High,
}

/// What one analysis is asked to do beyond the local analysis; every field has a default in
/// the configuration (`[providers]`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalysisOptions {
    /// `local` (the default) runs only the built-in analyzer; `gemini` or `openai` add what
    /// that provider finds, grounded on the local analysis.
    #[serde(default)]
    pub provider: Option<Source>,
    /// The provider's model; the configured default when absent.
    #[serde(default)]
    pub model: Option<String>,
    /// What to ask for; the configured default set when empty.
    #[serde(default)]
    pub features: Vec<Feature>,
    /// For `custom`: the instruction.
    #[serde(default)]
    pub prompt: Option<String>,
    /// For `custom`: the JSON Schema the answer must follow (checked before anything is sent).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub schema: Option<serde_json::Value>,
    /// Gemini's per-frame resolution; the configured default when absent.
    #[serde(default)]
    pub media_resolution: Option<MediaResolution>,
    /// Frames per second the model samples (Gemini: (0, 24], default 1).
    #[serde(default)]
    pub fps: Option<f64>,
    /// Analyse only this part of the video (seconds).
    #[serde(default)]
    pub start: Option<f64>,
    #[serde(default)]
    pub end: Option<f64>,
    /// The language answers should be written in (e.g. `en`, `fr`); the video's own for
    /// transcripts.
    #[serde(default)]
    pub language: Option<String>,
}

impl AnalysisOptions {
    /// Whether a provider beyond the local analyzer is involved.
    pub fn remote(&self) -> bool {
        matches!(self.provider, Some(Source::Gemini | Source::Openai))
    }
}

/// A summary of the whole video.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Summary {
    pub text: String,
    pub source: Source,
    pub model: Option<String>,
}

/// A chapter: contiguous with its neighbours, its start snapped to a shot boundary when one
/// is near.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Chapter {
    pub title: String,
    pub start: f64,
    pub end: f64,
    #[serde(default)]
    pub summary: Option<String>,
    /// The start was moved onto a shot boundary found by the local analyzer.
    #[serde(default)]
    pub snapped: bool,
    pub source: Source,
    pub model: Option<String>,
}

/// A stretch of speech.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TranscriptSegment {
    pub start: f64,
    pub end: f64,
    /// The speaker's label as the model tells them apart (`Speaker 1`, a name when said).
    #[serde(default)]
    pub speaker: Option<String>,
    pub text: String,
    pub source: Source,
    pub model: Option<String>,
}

/// Something seen (an object, an activity, a place) and when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Label {
    pub name: String,
    /// e.g. `object`, `activity`, `place`, `person`, `animal`.
    #[serde(default)]
    pub category: Option<String>,
    pub start: f64,
    pub end: f64,
    #[serde(default)]
    pub confidence: Option<f64>,
    pub source: Source,
    pub model: Option<String>,
}

/// Text a model read on screen (the local OCR is in `ocr`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GeneratedText {
    pub text: String,
    pub start: f64,
    pub end: f64,
    pub source: Source,
    pub model: Option<String>,
}

/// Topics and keywords of the whole video.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Topics {
    pub topics: Vec<String>,
    pub keywords: Vec<String>,
    pub source: Source,
    pub model: Option<String>,
}

/// Content a platform may need to review.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ModerationFlag {
    /// e.g. `violence`, `nudity`, `hate`, `self_harm`, `drugs`, `profanity`.
    pub category: String,
    /// `low`, `medium` or `high`.
    pub severity: String,
    pub start: f64,
    pub end: f64,
    #[serde(default)]
    pub reason: Option<String>,
    pub source: Source,
    pub model: Option<String>,
}

/// The answer to a custom prompt, in the user's schema.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CustomAnswer {
    pub prompt: String,
    #[schema(value_type = Object)]
    pub answer: serde_json::Value,
    pub source: Source,
    pub model: Option<String>,
}

/// Tokens one provider call (or a whole analysis) used.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenUsage {
    pub prompt: u64,
    pub candidates: u64,
    /// Tokens the model spent thinking (billed as output).
    pub thoughts: u64,
    pub total: u64,
    /// Prompt tokens by modality (`VIDEO`, `AUDIO`, `TEXT`, `IMAGE`).
    #[serde(default)]
    pub by_modality: BTreeMap<String, u64>,
}

impl TokenUsage {
    pub fn add(&mut self, other: &TokenUsage) {
        self.prompt += other.prompt;
        self.candidates += other.candidates;
        self.thoughts += other.thoughts;
        self.total += other.total;
        for (modality, count) in &other.by_modality {
            *self.by_modality.entry(modality.clone()).or_default() += count;
        }
    }
}

/// One provider's run in an analysis: what it was asked, what it cost, what was noticed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProviderRun {
    pub source: Source,
    pub model: String,
    pub features: Vec<Feature>,
    /// Tokens this analysis paid for: zero when `cached`.
    pub usage: TokenUsage,
    /// From the configured price table; `None` when the model has no price there.
    pub cost_usd: Option<f64>,
    /// Served from the result cache (same content, provider, model, prompt, schema and
    /// options): nothing was sent and nothing paid.
    pub cached: bool,
    /// Bytes sent to the provider (the video or its proxy, images).
    pub bytes_uploaded: u64,
    /// Bytes the compressed proxy saved over sending the original.
    pub bytes_saved: u64,
    /// The model's answers, unparsed, for audit: a key under the analysis's prefix,
    /// fetched at `/api/v1/analyses/{id}/raw`.
    pub raw: Option<String>,
    /// What grounding changed or dropped, and anything suspicious (e.g. no video tokens).
    pub warnings: Vec<String>,
}
