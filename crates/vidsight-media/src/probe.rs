//! ffprobe's JSON, parsed and normalised into [`MediaInfo`].
use serde::Deserialize;
use std::collections::HashMap;
use vidsight_domain::media::StreamInfo;
use vidsight_domain::{Error, ErrorCode, MediaInfo, Result};

/// Containers accepted from uploads (ffprobe `format_name` parts). Anything else — playlists,
/// concat scripts, images, text — is refused: those can make ffmpeg open other files.
const ACCEPTED_CONTAINERS: &[&str] = &[
    "mov",
    "mp4",
    "m4a",
    "3gp",
    "3g2",
    "mj2",
    "matroska",
    "webm",
    "avi",
    "mpegts",
    "mpeg",
    "flv",
    "ogg",
    "asf",
    "mxf",
    "m4v",
    "h264",
    "hevc",
    "dv",
    "nut",
    "gif",
    "ivf",
    "mpegvideo",
];

/// The raw ffprobe report.
#[derive(Debug, Deserialize)]
pub struct ProbeReport {
    #[serde(default)]
    streams: Vec<RawStream>,
    format: Option<RawFormat>,
}

#[derive(Debug, Deserialize)]
struct RawFormat {
    format_name: String,
    duration: Option<String>,
    bit_rate: Option<String>,
    start_time: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RawStream {
    index: u32,
    codec_type: Option<String>,
    codec_name: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    sample_aspect_ratio: Option<String>,
    display_aspect_ratio: Option<String>,
    r_frame_rate: Option<String>,
    avg_frame_rate: Option<String>,
    nb_frames: Option<String>,
    has_b_frames: Option<u32>,
    bit_rate: Option<String>,
    duration: Option<String>,
    channels: Option<u32>,
    sample_rate: Option<String>,
    #[serde(default)]
    tags: HashMap<String, String>,
    #[serde(default)]
    side_data_list: Vec<serde_json::Value>,
    #[serde(default)]
    disposition: HashMap<String, i64>,
}

pub fn parse_probe_output(stdout: &[u8]) -> Result<ProbeReport> {
    serde_json::from_slice(stdout).map_err(|error| {
        Error::new(
            ErrorCode::MediaToolFailed,
            "ffprobe printed output that is not its JSON",
        )
        .with_source(error)
    })
}

fn number<T: std::str::FromStr>(text: &Option<String>) -> Option<T> {
    text.as_deref().and_then(|text| text.trim().parse().ok())
}

/// `24000/1001` → 23.976…; `0/0` → None.
fn rate(text: &Option<String>) -> Option<f64> {
    let text = text.as_deref()?;
    let (numerator, denominator) = text.split_once('/').unwrap_or((text, "1"));
    let numerator: f64 = numerator.parse().ok()?;
    let denominator: f64 = denominator.parse().ok()?;
    (numerator > 0.0 && denominator > 0.0).then(|| numerator / denominator)
}

/// `4:3` → (4, 3); `0:1` or absent → None.
fn ratio(text: &Option<String>) -> Option<(u32, u32)> {
    let (left, right) = text.as_deref()?.split_once(':')?;
    let left: u32 = left.parse().ok()?;
    let right: u32 = right.parse().ok()?;
    (left > 0 && right > 0).then_some((left, right))
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl RawStream {
    fn kind(&self) -> &str {
        self.codec_type.as_deref().unwrap_or("data")
    }

    fn is_attached_picture(&self) -> bool {
        self.disposition.get("attached_pic").copied().unwrap_or(0) == 1
    }

    /// Clockwise rotation a player applies, from the display matrix or the legacy tag.
    fn rotation(&self) -> i32 {
        let from_side_data = self.side_data_list.iter().find_map(|side_data| {
            side_data
                .get("rotation")
                .and_then(|value| value.as_f64())
                .map(|degrees| -(degrees.round() as i32))
        });
        let degrees = from_side_data
            .or_else(|| {
                self.tags
                    .get("rotate")
                    .and_then(|text| text.parse::<i32>().ok())
            })
            .unwrap_or(0);
        // players only turn by quarter turns
        ((degrees.rem_euclid(360) + 45) / 90 * 90) % 360
    }
}

impl ProbeReport {
    /// Normalises the report; refuses what is not a readable video.
    pub fn into_media_info(self) -> Result<MediaInfo> {
        let format = self.format.ok_or_else(|| {
            Error::new(
                ErrorCode::UnsupportedMediaType,
                "the file is not a media container",
            )
        })?;
        let accepted = format
            .format_name
            .split(',')
            .any(|name| ACCEPTED_CONTAINERS.contains(&name));
        let audio_only = !self.streams.is_empty()
            && self
                .streams
                .iter()
                .all(|stream| stream.kind() == "audio" || stream.is_attached_picture());
        if audio_only {
            return Err(Error::new(
                ErrorCode::NotAVideo,
                "the file has sound but no video stream",
            ));
        }
        if !accepted {
            return Err(Error::new(
                ErrorCode::UnsupportedMediaType,
                format!(
                    "`{}` is not a video container vidsight accepts (use MP4, MOV, MKV, WebM, AVI, MPEG-TS, …)",
                    format.format_name
                ),
            ));
        }
        let video = self
            .streams
            .iter()
            .find(|stream| stream.kind() == "video" && !stream.is_attached_picture())
            .ok_or_else(|| Error::new(ErrorCode::NotAVideo, "the file has no video stream"))?;
        let (width, height) = match (video.width, video.height) {
            (Some(width), Some(height)) if width > 0 && height > 0 => (width, height),
            _ => {
                return Err(Error::new(
                    ErrorCode::UndecodableMedia,
                    "the video stream has no frame size (is the file damaged?)",
                ))
            }
        };
        let audio = self.streams.iter().find(|stream| stream.kind() == "audio");

        let (sar_w, sar_h) = ratio(&video.sample_aspect_ratio).unwrap_or((1, 1));
        let rotation = video.rotation();
        let shown_width = ((width as u64 * sar_w as u64) as f64 / sar_h as f64).round() as u32;
        let (display_width, display_height) = if rotation == 90 || rotation == 270 {
            (height, shown_width)
        } else {
            (shown_width, height)
        };
        let display_aspect = match ratio(&video.display_aspect_ratio) {
            Some((w, h)) if rotation != 90 && rotation != 270 => format!("{w}:{h}"),
            Some((w, h)) => format!("{h}:{w}"),
            None => {
                let divisor = gcd(display_width as u64, display_height as u64).max(1);
                format!(
                    "{}:{}",
                    display_width as u64 / divisor,
                    display_height as u64 / divisor
                )
            }
        };

        let nominal_fps = rate(&video.r_frame_rate);
        let average_fps = rate(&video.avg_frame_rate);
        let fps = average_fps.or(nominal_fps).unwrap_or(0.0);
        let variable_frame_rate = match (nominal_fps, average_fps) {
            (Some(nominal), Some(average)) => (nominal - average).abs() / nominal > 0.01,
            _ => false,
        };
        let duration = number::<f64>(&format.duration)
            .or_else(|| number(&video.duration))
            .unwrap_or(0.0);
        if !(duration.is_finite() && duration > 0.0) {
            return Err(Error::new(
                ErrorCode::UndecodableMedia,
                "the video has no duration (is the file damaged?)",
            ));
        }

        Ok(MediaInfo {
            container: format.format_name.clone(),
            duration,
            width,
            height,
            display_width,
            display_height,
            display_aspect,
            sample_aspect: format!("{sar_w}:{sar_h}"),
            rotation,
            fps: (fps * 1000.0).round() / 1000.0,
            variable_frame_rate,
            frame_count: number(&video.nb_frames),
            video_codec: video.codec_name.clone().unwrap_or_else(|| "unknown".into()),
            reorder_delay: video.has_b_frames,
            audio_codec: audio.and_then(|stream| stream.codec_name.clone()),
            audio_channels: audio.and_then(|stream| stream.channels),
            audio_sample_rate: audio.and_then(|stream| number(&stream.sample_rate)),
            bit_rate: number(&format.bit_rate),
            video_bit_rate: number(&video.bit_rate),
            audio_bit_rate: audio.and_then(|stream| number(&stream.bit_rate)),
            start_time: number(&format.start_time).unwrap_or(0.0),
            streams: self
                .streams
                .iter()
                .map(|stream| StreamInfo {
                    index: stream.index,
                    kind: if stream.is_attached_picture() {
                        "attachment".into()
                    } else {
                        stream.kind().to_owned()
                    },
                    codec: stream.codec_name.clone(),
                    language: stream.tags.get("language").cloned(),
                    title: stream
                        .tags
                        .get("title")
                        .map(|title| title.chars().take(200).collect()),
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(json: &str) -> Result<MediaInfo> {
        parse_probe_output(json.as_bytes())?.into_media_info()
    }

    #[test]
    fn rotation_swaps_display_size() {
        let info = report(
            r#"{"streams":[{"index":0,"codec_type":"video","codec_name":"h264","width":1280,"height":544,
            "sample_aspect_ratio":"1:1","display_aspect_ratio":"40:17","r_frame_rate":"24/1","avg_frame_rate":"24/1",
            "has_b_frames":0,"side_data_list":[{"side_data_type":"Display Matrix","rotation":-90}]}],
            "format":{"format_name":"mov,mp4,m4a,3gp,3g2,mj2","duration":"10.0","bit_rate":"1000"}}"#,
        )
        .unwrap();
        assert_eq!(info.rotation, 90);
        assert_eq!((info.display_width, info.display_height), (544, 1280));
        assert_eq!(info.display_aspect, "17:40");
        assert!(!info.variable_frame_rate);
        assert_eq!(info.reorder_delay, Some(0));
    }

    #[test]
    fn non_square_pixels_and_vfr() {
        let info = report(
            r#"{"streams":[{"index":0,"codec_type":"video","codec_name":"h264","width":704,"height":576,
            "sample_aspect_ratio":"16:11","display_aspect_ratio":"16:9","r_frame_rate":"24000/1001","avg_frame_rate":"16/1"},
            {"index":1,"codec_type":"audio","codec_name":"aac","channels":2,"sample_rate":"48000"}],
            "format":{"format_name":"mov,mp4","duration":"25.0"}}"#,
        )
        .unwrap();
        assert_eq!((info.display_width, info.display_height), (1024, 576));
        assert_eq!(info.display_aspect, "16:9");
        assert!(info.variable_frame_rate);
        assert_eq!(info.audio_codec.as_deref(), Some("aac"));
        assert_eq!(info.audio_sample_rate, Some(48000));
        // not said: unknown, not none
        assert_eq!(info.reorder_delay, None);
    }

    #[test]
    fn refuses_playlists_audio_only_and_attached_pictures() {
        let hls = report(
            r#"{"streams":[{"index":0,"codec_type":"video","width":1,"height":1}],"format":{"format_name":"hls","duration":"1"}}"#,
        );
        assert_eq!(hls.unwrap_err().code, ErrorCode::UnsupportedMediaType);
        let mp3 = report(
            r#"{"streams":[{"index":0,"codec_type":"audio"},{"index":1,"codec_type":"video","width":300,"height":300,"disposition":{"attached_pic":1}}],"format":{"format_name":"mp4","duration":"3"}}"#,
        );
        assert_eq!(mp3.unwrap_err().code, ErrorCode::NotAVideo);
        assert_eq!(
            report("{}").unwrap_err().code,
            ErrorCode::UnsupportedMediaType
        );
    }
}
