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
    /// Runs of shots that look alike (a conversation's shot and reverse shot are one scene).
    #[serde(default)]
    pub scenes: Vec<Scene>,
    /// A perceptual hash (dHash, 16 hex digits) of each shot's keyframe, in shot order: what
    /// `GET /api/v1/videos/{id}/duplicates` compares.
    #[serde(default)]
    pub fingerprint: Vec<String>,
    /// Text read on screen (OCR of each shot's keyframe), one entry per line of text and time
    /// range.
    #[serde(default)]
    pub ocr: Vec<OnScreenText>,
    pub black: Vec<Segment>,
    /// Stretches of at least 2 s where the picture does not change (and is not black).
    #[serde(default)]
    pub freeze: Vec<Segment>,
    /// Colour bars and similar static test patterns (SMPTE/EBU bars, RGB ramps), at least 1 s.
    #[serde(default)]
    pub bars: Vec<Segment>,
    pub silence: Vec<Segment>,
    /// Absent when the video has no audio.
    pub loudness: Option<Loudness>,
    /// The text of the subtitle/caption tracks the file carries (SubRip, ASS, mov_text,
    /// WebVTT…), one entry per track. Left out when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub captions: Vec<CaptionTrack>,
    /// Seek-bar preview tiles in sprite sheets; absent from analyses that predate it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storyboard: Option<Storyboard>,
    // --- what analysis providers (Gemini, OpenAI-compatible models) add, each item with its
    // `source` and `model`; left out when no provider ran
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<crate::ai::Summary>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chapters: Vec<crate::ai::Chapter>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transcript: Vec<crate::ai::TranscriptSegment>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<crate::ai::Label>,
    /// On-screen text a model read (the local OCR's is `ocr`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub text: Vec<crate::ai::GeneratedText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topics: Option<crate::ai::Topics>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub moderation: Vec<crate::ai::ModerationFlag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<crate::ai::CustomAnswer>,
    /// Each provider run: model, features, tokens, cost, cache hits, warnings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<crate::ai::ProviderRun>,
}

/// A line of text seen on screen from `start` to `end`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OnScreenText {
    pub text: String,
    pub start: f64,
    pub end: f64,
    /// Tesseract's mean word confidence, 0–1.
    pub confidence: f64,
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
    /// Name of the same picture 160 pixels wide (`shot-0001-small.jpg`), fetched at
    /// `/api/v1/videos/{id}/keyframes/{thumbnail}` (or `/keyframes/{keyframe}?size=small`).
    /// Absent when the shot has no keyframe, or the analysis predates thumbnails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<String>,
    /// Mean luma of the shot's frames, 0 (black) to 1 (white).
    #[serde(default)]
    pub brightness: Option<f64>,
    /// How much the picture moves: the mean content score between the shot's frames, 0 (still)
    /// to 1 (a new picture every frame).
    #[serde(default)]
    pub motion: Option<f64>,
    /// Up to three colours covering most of the keyframe, largest first.
    #[serde(default)]
    pub colors: Vec<ShotColor>,
}

/// A dominant colour of a shot's keyframe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShotColor {
    /// `#rrggbb`.
    pub hex: String,
    /// Share of the picture, 0–1.
    pub share: f64,
}

/// Consecutive shots that belong together.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Scene {
    pub index: u32,
    pub start: f64,
    pub end: f64,
    /// The `index` of its first and last shot.
    pub first_shot: u32,
    pub last_shot: u32,
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
    /// For a cut, the time of the first frame of the new shot; for a gradual transition, its
    /// first frame…
    pub start: f64,
    /// …and the first frame after it (for a cut, `start`).
    pub end: f64,
    /// How sure the detector is, 0–1.
    #[serde(default = "full_confidence")]
    pub confidence: f64,
}

fn full_confidence() -> f64 {
    1.0
}

/// Preview pictures for a player's seek bar: one tile every `interval` seconds or so, laid
/// out row by row, `columns` × `rows` to a JPEG sheet. Tile `i` is on sheet
/// `i / (columns · rows)`, at column `i % columns` and row `(i / columns) % rows`; it shows
/// the video from `times[i]` to `times[i + 1]` (the last one to `end`).
/// `GET /api/v1/videos/{id}/storyboard.vtt` says the same as a WebVTT thumbnails track.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Storyboard {
    /// Seconds between tiles: 1 up to 200 s of video, then 2, 5, 10, 15, 20, 30, 60 and
    /// multiples of 60 s, the smallest that keeps to about 200 tiles.
    pub interval: f64,
    pub tile_width: u32,
    pub tile_height: u32,
    /// Tiles per row, and rows per full sheet (the last sheet may be cut short).
    pub columns: u32,
    pub rows: u32,
    /// When each tile starts: the timestamp of the frame it shows (the first is 0).
    pub times: Vec<f64>,
    /// When the last tile ends: the end of the video.
    pub end: f64,
    /// Sheet names in order (`sheet-000.jpg`…), fetched at
    /// `/api/v1/videos/{id}/storyboard/{sheet}`.
    pub sheets: Vec<String>,
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
    /// Loudness second by second (LUFS, the energy mean of the momentary loudness in each
    /// second; -120 for digital silence).
    #[serde(default)]
    pub curve: Vec<f64>,
}

/// Keyframe hashes at most this many bits apart show the same picture.
pub const SAME_PICTURE_BITS: u32 = 10;

/// How much two fingerprints (see [`Insights::fingerprint`]) share, 0–1: the mean of the two
/// shares of keyframes that have a hash within [`SAME_PICTURE_BITS`] in the other video; and
/// how many of `a`'s keyframes matched.
pub fn fingerprint_similarity(a: &[String], b: &[String]) -> (f64, usize) {
    let parse = |hashes: &[String]| -> Vec<u64> {
        hashes
            .iter()
            .filter_map(|hash| u64::from_str_radix(hash, 16).ok())
            .collect()
    };
    let (a, b) = (parse(a), parse(b));
    if a.is_empty() || b.is_empty() {
        return (0.0, 0);
    }
    let found_in = |from: &[u64], to: &[u64]| {
        from.iter()
            .filter(|hash| {
                to.iter()
                    .any(|other| (*hash ^ other).count_ones() <= SAME_PICTURE_BITS)
            })
            .count()
    };
    let matched = found_in(&a, &b);
    let share = (matched as f64 / a.len() as f64 + found_in(&b, &a) as f64 / b.len() as f64) / 2.0;
    ((share * 100.0).round() / 100.0, matched)
}
