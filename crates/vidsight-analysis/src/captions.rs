//! Embedded subtitle and caption tracks as text: ffmpeg converts any text subtitle codec to
//! WebVTT, and the cues are read back here with markup removed. Written by hand rather than
//! with a WebVTT crate because only the cue timings and plain text are needed, from a
//! producer (ffmpeg) whose output is regular.
use std::path::Path;
use vidsight_domain::insights::{CaptionTrack, Cue};
use vidsight_domain::MediaInfo;
use vidsight_media::MediaTools;

/// At most this many tracks are read (a release with 30 languages gets the first 8).
pub const MAX_TRACKS: usize = 8;
/// At most this many cues per track.
pub const MAX_CUES: usize = 20_000;
/// Longer cue texts are cut to this many characters.
const MAX_CUE_CHARS: usize = 1_000;

/// Reads every text subtitle track of the file. A track that cannot be read is skipped
/// (logged), never failing the analysis: captions are a bonus, the pictures are the job.
pub async fn read_tracks(tools: &MediaTools, path: &Path, media: &MediaInfo) -> Vec<CaptionTrack> {
    let streams: Vec<_> = media
        .streams
        .iter()
        .filter(|stream| {
            stream.kind == "subtitle"
                && stream
                    .codec
                    .as_deref()
                    .is_some_and(vidsight_media::is_text_subtitle)
        })
        .take(MAX_TRACKS)
        .collect();
    if streams.is_empty() {
        return Vec::new();
    }
    let indices: Vec<u32> = streams.iter().map(|stream| stream.index).collect();
    let texts = tools.subtitles_webvtt(path, &indices).await;
    let mut tracks = Vec::new();
    for (stream, (_, text)) in streams.into_iter().zip(texts) {
        match text {
            Ok(text) => {
                // ffmpeg already moved the times so the file starts at zero, as players do
                let cues = parse_webvtt(&text, 0.0);
                if !cues.is_empty() {
                    tracks.push(CaptionTrack {
                        stream: stream.index,
                        language: stream.language.clone(),
                        title: stream.title.clone(),
                        cues,
                    });
                }
            }
            Err(error) => tracing::warn!(stream = stream.index, %error, "subtitle track skipped"),
        }
    }
    tracks
}

/// The cues of a WebVTT document, in time order, times made relative to `offset` (the
/// container's first timestamp, so they line up with the player and the shots). Cue
/// settings, tags (`<i>`, `<c.yellow>`, `<00:01.000>`) and entities are removed;
/// empty cues are dropped.
pub fn parse_webvtt(text: &str, offset: f64) -> Vec<Cue> {
    let mut cues = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let Some((start, end)) = parse_timing(line) else {
            continue;
        };
        let mut body = Vec::new();
        while let Some(next) = lines.peek() {
            if next.trim().is_empty() {
                break;
            }
            body.push(plain_text(next));
            lines.next();
        }
        let text: String = body
            .iter()
            .map(|line| line.trim())
            .filter(|line| !line.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
            .chars()
            .take(MAX_CUE_CHARS)
            .collect();
        let start = round_ms(start - offset);
        let end = round_ms(end - offset);
        if text.is_empty() || end < start || end <= 0.0 {
            continue;
        }
        cues.push(Cue {
            start: start.max(0.0),
            end,
            text,
        });
        if cues.len() >= MAX_CUES {
            break;
        }
    }
    cues.sort_by(|a, b| a.start.total_cmp(&b.start));
    cues
}

fn round_ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

/// `00:01.500 --> 00:03.000 align:start` → (1.5, 3.0).
fn parse_timing(line: &str) -> Option<(f64, f64)> {
    let (start, rest) = line.split_once("-->")?;
    let end = rest.split_whitespace().next()?;
    Some((parse_timestamp(start.trim())?, parse_timestamp(end)?))
}

/// `hh:mm:ss.mmm` or `mm:ss.mmm` (a comma is accepted for the dot).
fn parse_timestamp(text: &str) -> Option<f64> {
    let text = text.replace(',', ".");
    let parts: Vec<&str> = text.split(':').collect();
    let (hours, minutes, seconds) = match parts.as_slice() {
        [minutes, seconds] => (
            0.0,
            minutes.parse::<f64>().ok()?,
            seconds.parse::<f64>().ok()?,
        ),
        [hours, minutes, seconds] => (
            hours.parse::<f64>().ok()?,
            minutes.parse::<f64>().ok()?,
            seconds.parse::<f64>().ok()?,
        ),
        _ => return None,
    };
    let total = hours * 3600.0 + minutes * 60.0 + seconds;
    (total.is_finite() && total >= 0.0).then_some(total)
}

/// Removes `<…>` tags and `{…}` ASS override blocks, decodes the entities WebVTT uses.
fn plain_text(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut depth_tag = false;
    let mut depth_brace = false;
    for character in line.chars() {
        match character {
            '<' if !depth_brace => depth_tag = true,
            '>' if depth_tag => depth_tag = false,
            '{' if !depth_tag => depth_brace = true,
            '}' if depth_brace => depth_brace = false,
            _ if depth_tag || depth_brace => {}
            _ => out.push(character),
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", " ")
        .replace("&lrm;", "")
        .replace("&rlm;", "")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cues_without_markup() {
        let text = "WEBVTT\n\n00:00.500 --> 00:02.000\nHello <i>wonderful</i> world\n\n\
                    1\n01:00:02.500 --> 01:00:04.000 align:start position:10%\n{\\an8}Pastéis &amp; nata\n<c.yellow>second</c> line\n\n\
                    00:05.000 --> 00:06.000\n<i></i>\n\n";
        let cues = parse_webvtt(text, 0.0);
        assert_eq!(
            cues,
            vec![
                Cue {
                    start: 0.5,
                    end: 2.0,
                    text: "Hello wonderful world".into()
                },
                Cue {
                    start: 3602.5,
                    end: 3604.0,
                    text: "Pastéis & nata\nsecond line".into()
                },
            ]
        );
    }

    #[test]
    fn times_follow_the_first_timestamp_and_nonsense_is_skipped() {
        let text = "WEBVTT\n\n00:01.400 --> 00:02.000\nA\n\nxx --> yy\nB\n\n00:03.000 --> 00:01.000\nC\n\n";
        let cues = parse_webvtt(text, 1.4);
        assert_eq!(
            cues,
            vec![Cue {
                start: 0.0,
                end: 0.6,
                text: "A".into()
            }]
        );
    }
}
