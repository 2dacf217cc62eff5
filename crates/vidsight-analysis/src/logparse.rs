//! Reads what ffmpeg's filters print on stderr: frame timestamps (showinfo), silent
//! segments (silencedetect) and the EBU R128 summary (ebur128).

/// What one stderr line told us.
#[derive(Debug, PartialEq)]
pub enum LogEvent {
    /// A video frame passed the showinfo filter at this time (seconds).
    Frame(f64),
    SilenceStart(f64),
    SilenceEnd(f64),
    /// A line of the ebur128 summary (kept for [`parse_loudness_summary`]).
    LoudnessSummary(String),
    /// Any other line (kept, bounded, for error messages).
    Other,
}

fn number_after(line: &str, marker: &str) -> Option<f64> {
    let start = line.find(marker)? + marker.len();
    let rest = line[start..].trim_start();
    let end = rest
        .find(|character: char| character.is_whitespace() || character == '|')
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Classifies one stderr line. `in_summary` is true after the ebur128 "Summary:" line.
pub fn parse_line(line: &str, in_summary: &mut bool) -> LogEvent {
    if line.contains("Parsed_showinfo") {
        if line.contains(" n:") {
            if let Some(time) = number_after(line, "pts_time:") {
                return LogEvent::Frame(time);
            }
        }
        return LogEvent::Other;
    }
    if line.contains("silencedetect") {
        if let Some(time) = number_after(line, "silence_start:") {
            return LogEvent::SilenceStart(time);
        }
        if let Some(time) = number_after(line, "silence_end:") {
            return LogEvent::SilenceEnd(time);
        }
        return LogEvent::Other;
    }
    if line.contains("Parsed_ebur128") && line.contains("Summary:") {
        *in_summary = true;
        return LogEvent::Other;
    }
    if *in_summary {
        let trimmed = line.trim();
        if trimmed.is_empty() || !trimmed.starts_with('[') {
            return LogEvent::LoudnessSummary(trimmed.to_owned());
        }
        *in_summary = false;
    }
    LogEvent::Other
}

/// Digital silence has no finite level; it is reported as this floor.
pub const LEVEL_FLOOR: f64 = -120.0;

fn finite_or_floor(value: f64) -> f64 {
    if value.is_finite() {
        value.max(LEVEL_FLOOR)
    } else {
        LEVEL_FLOOR
    }
}

/// Integrated loudness (LUFS), loudness range (LU) and true peak (dBTP) from the summary.
pub fn parse_loudness_summary(lines: &[String]) -> Option<(f64, f64, f64)> {
    let mut integrated = None;
    let mut range = None;
    let mut peak = None;
    let mut section = "";
    for line in lines {
        let trimmed = line.trim();
        if trimmed.ends_with(':') && !trimmed.contains(' ')
            || trimmed.starts_with("Integrated")
            || trimmed.starts_with("Loudness range")
            || trimmed.starts_with("True peak")
        {
            section = if trimmed.starts_with("Integrated") {
                "integrated"
            } else if trimmed.starts_with("Loudness range") {
                "range"
            } else if trimmed.starts_with("True peak") {
                "peak"
            } else {
                ""
            };
            continue;
        }
        let value = trimmed
            .split_once(':')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .and_then(|text| text.parse::<f64>().ok());
        match (section, trimmed.split(':').next().unwrap_or("")) {
            ("integrated", "I") => integrated = value,
            ("range", "LRA") => range = value,
            ("peak", "Peak") => peak = value,
            _ => {}
        }
    }
    Some((
        finite_or_floor(integrated?),
        range.map(|value| if value.is_finite() { value } else { 0.0 })?,
        finite_or_floor(peak?),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_showinfo_and_silencedetect_lines() {
        let mut summary = false;
        let frame = "[Parsed_showinfo_2 @ 0x5581] n:  12 pts:  6144 pts_time:0.48    duration:512 pos:1 fmt:rgb24 sar:1/1 s:480x270";
        assert_eq!(parse_line(frame, &mut summary), LogEvent::Frame(0.48));
        let side = "[Parsed_showinfo_2 @ 0x5581]   color_range:tv color_space:bt709";
        assert_eq!(parse_line(side, &mut summary), LogEvent::Other);
        assert_eq!(
            parse_line("[silencedetect @ 0x1] silence_start: 4.00533", &mut summary),
            LogEvent::SilenceStart(4.00533)
        );
        assert_eq!(
            parse_line(
                "[silencedetect @ 0x1] silence_end: 5.5 | silence_duration: 1.49467",
                &mut summary
            ),
            LogEvent::SilenceEnd(5.5)
        );
        assert_eq!(
            parse_line("[silencedetect @ 0x1] silence_start: -0.0213", &mut summary),
            LogEvent::SilenceStart(-0.0213)
        );
    }

    #[test]
    fn reads_the_loudness_summary() {
        let text = "[Parsed_ebur128_1 @ 0x55] Summary:\n\n  Integrated loudness:\n    I:         -23.4 LUFS\n    Threshold: -33.6 LUFS\n\n  Loudness range:\n    LRA:         5.2 LU\n    Threshold:  -43.7 LUFS\n    LRA low:    -26.1 LUFS\n    LRA high:   -20.9 LUFS\n\n  True peak:\n    Peak:        -1.3 dBFS\n[out#1 @ 0x1] video:0kB";
        let mut summary = false;
        let lines: Vec<String> = text
            .lines()
            .filter_map(|line| match parse_line(line, &mut summary) {
                LogEvent::LoudnessSummary(line) => Some(line),
                _ => None,
            })
            .collect();
        assert_eq!(parse_loudness_summary(&lines), Some((-23.4, 5.2, -1.3)));
        let silent = vec![
            "Integrated loudness:".to_string(),
            "I:         -70.0 LUFS".into(),
            "Loudness range:".into(),
            "LRA:         0.0 LU".into(),
            "True peak:".into(),
            "Peak:        -inf dBFS".into(),
        ];
        assert_eq!(
            parse_loudness_summary(&silent),
            Some((-70.0, 0.0, LEVEL_FLOOR))
        );
    }
}
