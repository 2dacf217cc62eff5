//! The insights document, `vidsight.insights/v1`. Its JSON Schema is
//! `schemas/insights-v1.schema.json`; docs/insights.md explains each field.
use crate::MediaInfo;
use serde::{Deserialize, Serialize};

pub const SCHEMA_V1: &str = "vidsight.insights/v1";

/// Everything the local analyzer found. All times are seconds from the start of the video.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Insights {
    /// Always `vidsight.insights/v1` for this version.
    pub schema: String,
    pub media: MediaInfo,
    pub shots: Vec<Shot>,
    pub transitions: Vec<Transition>,
    pub black: Vec<Segment>,
    pub silence: Vec<Segment>,
    /// Absent when the video has no audio.
    pub loudness: Option<Loudness>,
    /// The text of the subtitle/caption tracks the file carries (SubRip, ASS, mov_text,
    /// WebVTT…), one entry per track. Left out when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub captions: Vec<CaptionTrack>,
}

/// One embedded subtitle or caption track and its cues.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CaptionTrack {
    /// The stream's index in the container.
    pub stream: u32,
    /// ISO 639 language tag when the container says.
    pub language: Option<String>,
    /// The track's name when the container says, e.g. `English (SDH)`.
    pub title: Option<String>,
    pub cues: Vec<Cue>,
}

/// A timed piece of text; markup (italics, positioning) removed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Cue {
    pub start: f64,
    pub end: f64,
    pub text: String,
}

/// A run of frames between two transitions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Shot {
    pub index: u32,
    pub start: f64,
    pub end: f64,
    /// Name of the keyframe image, fetched at
    /// `/api/v1/videos/{id}/keyframes/{keyframe}`.
    pub keyframe: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransitionKind {
    Cut,
    Dissolve,
    FadeIn,
    FadeOut,
}

/// A boundary between shots; for a cut `start == end`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Transition {
    pub kind: TransitionKind,
    pub start: f64,
    pub end: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Segment {
    pub start: f64,
    pub end: f64,
}

/// EBU R128 loudness of the first audio stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Loudness {
    pub integrated_lufs: f64,
    pub lra: f64,
    pub true_peak_dbtp: f64,
}
