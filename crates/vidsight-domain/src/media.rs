//! Technical facts about a media file, as read by ffprobe.
use serde::{Deserialize, Serialize};

/// The ffprobe facts of a file, normalised.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MediaInfo {
    /// ffprobe's container name list, e.g. `mov,mp4,m4a,3gp,3g2,mj2`.
    pub container: String,
    /// Seconds.
    pub duration: f64,
    /// Stored (coded) frame size of the main video stream.
    pub width: u32,
    pub height: u32,
    /// The size a player shows: sample aspect and rotation applied.
    pub display_width: u32,
    pub display_height: u32,
    /// Display aspect ratio as `W:H`, e.g. `16:9`.
    pub display_aspect: String,
    /// Sample (pixel) aspect ratio as `W:H`, `1:1` for square pixels.
    pub sample_aspect: String,
    /// Clockwise rotation in degrees a player applies (0, 90, 180, 270).
    pub rotation: i32,
    /// Average frame rate (frames per second).
    pub fps: f64,
    /// Whether the frame rate varies (average and nominal rates disagree).
    pub variable_frame_rate: bool,
    /// Number of video frames when the container says.
    pub frame_count: Option<u64>,
    pub video_codec: String,
    /// Frames a decoder holds back to put B-frames in order (ffprobe's `has_b_frames`):
    /// 0 when the video has none. Absent from facts read before it was recorded.
    #[serde(default)]
    pub reorder_delay: Option<u32>,
    pub audio_codec: Option<String>,
    pub audio_channels: Option<u32>,
    pub audio_sample_rate: Option<u32>,
    /// Overall bit rate, bits per second.
    pub bit_rate: Option<u64>,
    pub video_bit_rate: Option<u64>,
    pub audio_bit_rate: Option<u64>,
    /// First presentation timestamp, seconds (not always zero).
    pub start_time: f64,
    pub streams: Vec<StreamInfo>,
}

/// One stream of the container.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StreamInfo {
    pub index: u32,
    /// `video`, `audio`, `subtitle`, `data` or `attachment`.
    pub kind: String,
    pub codec: Option<String>,
    pub language: Option<String>,
    /// The stream's name when the container gives one (e.g. a subtitle track's `English`).
    #[serde(default)]
    pub title: Option<String>,
}
