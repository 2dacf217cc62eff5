//! Exports of an insights document: shots as WebVTT chapters, caption tracks as WebVTT or
//! SubRip, the storyboard as a WebVTT thumbnails track, and every timed finding as CSV.
use vidsight_domain::insights::{Cue, Insights, Shot, Storyboard};

fn clock(seconds: f64, separator: char) -> String {
    let millis = (seconds.max(0.0) * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}{separator}{:03}",
        millis / 3_600_000,
        millis / 60_000 % 60,
        millis / 1000 % 60,
        millis % 1000
    )
}

fn timestamp(seconds: f64) -> String {
    clock(seconds, '.')
}

/// A cue's text made safe for a cue payload: no blank lines (they end a cue), no `-->`.
fn cue_text(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(|line| line.replace("-->", "->"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Captions as WebVTT (`<`, `&` escaped as the format requires).
pub fn captions_vtt(cues: &[Cue]) -> String {
    let mut text = String::from("WEBVTT\n\n");
    for cue in cues {
        let payload = cue_text(&cue.text)
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        text.push_str(&format!(
            "{} --> {}\n{payload}\n\n",
            timestamp(cue.start),
            timestamp(cue.end)
        ));
    }
    text
}

/// Captions as SubRip (`.srt`): numbered cues, comma before the milliseconds.
pub fn captions_srt(cues: &[Cue]) -> String {
    let mut text = String::new();
    for (number, cue) in cues.iter().enumerate() {
        text.push_str(&format!(
            "{}\n{} --> {}\n{}\n\n",
            number + 1,
            clock(cue.start, ','),
            clock(cue.end, ','),
            cue_text(&cue.text)
        ));
    }
    text
}

/// The storyboard as a WebVTT thumbnails track (what players use for seek-bar previews):
/// one cue per tile, from its time to the next tile's (the last to the end of the video),
/// whose payload is `storyboard/{sheet}#xywh=x,y,w,h`, relative to the track's own URL.
pub fn storyboard_vtt(storyboard: &Storyboard) -> String {
    let mut text = String::from("WEBVTT\n\n");
    let columns = storyboard.columns.max(1) as usize;
    let per_sheet = columns * storyboard.rows.max(1) as usize;
    let (width, height) = (storyboard.tile_width, storyboard.tile_height);
    for (index, start) in storyboard.times.iter().enumerate() {
        let Some(sheet) = storyboard.sheets.get(index / per_sheet) else {
            break;
        };
        let end = storyboard
            .times
            .get(index + 1)
            .copied()
            .unwrap_or(storyboard.end);
        let on_sheet = index % per_sheet;
        let x = (on_sheet % columns) as u32 * width;
        let y = (on_sheet / columns) as u32 * height;
        text.push_str(&format!(
            "{} --> {}\nstoryboard/{sheet}#xywh={x},{y},{width},{height}\n\n",
            timestamp(*start),
            timestamp(end)
        ));
    }
    text
}

/// Every timed finding, one row each, in time order: `kind,start,end,text` where kind is
/// `shot`, `cut`/`dissolve`/`fade_in`/`fade_out`, `black`, `bars`, `silence` or `caption`.
pub fn insights_csv(insights: &Insights) -> Result<Vec<u8>, csv::Error> {
    let mut rows: Vec<(&str, f64, f64, String)> = Vec::new();
    for shot in &insights.shots {
        rows.push((
            "shot",
            shot.start,
            shot.end,
            shot.keyframe.clone().unwrap_or_default(),
        ));
    }
    for transition in &insights.transitions {
        let kind = match transition.kind {
            vidsight_domain::insights::TransitionKind::Cut => "cut",
            vidsight_domain::insights::TransitionKind::Dissolve => "dissolve",
            vidsight_domain::insights::TransitionKind::FadeIn => "fade_in",
            vidsight_domain::insights::TransitionKind::FadeOut => "fade_out",
        };
        rows.push((kind, transition.start, transition.end, String::new()));
    }
    for segment in &insights.black {
        rows.push(("black", segment.start, segment.end, String::new()));
    }
    for segment in &insights.bars {
        rows.push(("bars", segment.start, segment.end, String::new()));
    }
    for segment in &insights.silence {
        rows.push(("silence", segment.start, segment.end, String::new()));
    }
    for track in &insights.captions {
        for cue in &track.cues {
            rows.push(("caption", cue.start, cue.end, cue.text.clone()));
        }
    }
    rows.sort_by(|a, b| a.1.total_cmp(&b.1));
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(["kind", "start", "end", "text"])?;
    for (kind, start, end, text) in rows {
        // a cell starting with = + - @ would run as a formula in a spreadsheet
        let text = if text.starts_with(['=', '+', '-', '@']) {
            format!("'{text}")
        } else {
            text
        };
        writer.write_record([kind, &format!("{start:.3}"), &format!("{end:.3}"), &text])?;
    }
    writer
        .into_inner()
        .map_err(|error| error.into_error().into())
}

pub fn chapters(shots: &[Shot]) -> String {
    let mut text = String::from("WEBVTT\n\n");
    for shot in shots {
        text.push_str(&format!(
            "shot-{}\n{} --> {}\nShot {}\n\n",
            shot.index + 1,
            timestamp(shot.start),
            timestamp(shot.end),
            shot.index + 1
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captions_export_as_vtt_and_srt() {
        let cues = vec![
            Cue {
                start: 0.5,
                end: 2.0,
                text: "Fish & <chips>".into(),
            },
            Cue {
                start: 61.25,
                end: 3661.0,
                text: "two\n\nlines --> here".into(),
            },
        ];
        assert_eq!(
            captions_vtt(&cues),
            "WEBVTT\n\n00:00:00.500 --> 00:00:02.000\nFish &amp; &lt;chips&gt;\n\n\
             00:01:01.250 --> 01:01:01.000\ntwo\nlines -&gt; here\n\n"
        );
        assert_eq!(
            captions_srt(&cues),
            "1\n00:00:00,500 --> 00:00:02,000\nFish & <chips>\n\n\
             2\n00:01:01,250 --> 01:01:01,000\ntwo\nlines -> here\n\n"
        );
    }

    #[test]
    fn storyboard_cues_point_into_their_sheet() {
        let storyboard = Storyboard {
            interval: 1.0,
            tile_width: 160,
            tile_height: 90,
            columns: 10,
            rows: 10,
            // 102 tiles: the last two on the second sheet
            times: (0..102).map(|second| second as f64 + 0.02).collect(),
            end: 102.5,
            sheets: vec!["sheet-000.jpg".into(), "sheet-001.jpg".into()],
        };
        let vtt = storyboard_vtt(&storyboard);
        let cues: Vec<&str> = vtt
            .trim_end()
            .strip_prefix("WEBVTT\n\n")
            .unwrap()
            .split("\n\n")
            .collect();
        assert_eq!(cues.len(), 102);
        assert_eq!(
            cues[0],
            "00:00:00.020 --> 00:00:01.020\nstoryboard/sheet-000.jpg#xywh=0,0,160,90"
        );
        assert_eq!(
            cues[13],
            "00:00:13.020 --> 00:00:14.020\nstoryboard/sheet-000.jpg#xywh=480,90,160,90"
        );
        assert_eq!(
            cues[99],
            "00:01:39.020 --> 00:01:40.020\nstoryboard/sheet-000.jpg#xywh=1440,810,160,90"
        );
        assert_eq!(
            cues[101],
            "00:01:41.020 --> 00:01:42.500\nstoryboard/sheet-001.jpg#xywh=160,0,160,90"
        );
    }

    #[test]
    fn formats_cues() {
        let shots = vec![
            Shot {
                index: 0,
                start: 0.0,
                end: 3.754,
                keyframe: None,
                thumbnail: None,
                brightness: None,
                motion: None,
                colors: Vec::new(),
            },
            Shot {
                index: 1,
                start: 3.754,
                end: 3725.5,
                keyframe: None,
                thumbnail: None,
                brightness: None,
                motion: None,
                colors: Vec::new(),
            },
        ];
        assert_eq!(
            chapters(&shots),
            "WEBVTT\n\nshot-1\n00:00:00.000 --> 00:00:03.754\nShot 1\n\nshot-2\n00:00:03.754 --> 01:02:05.500\nShot 2\n\n"
        );
    }
}
