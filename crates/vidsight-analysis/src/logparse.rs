//! Reads what ffmpeg's filters print on stderr: frame timestamps (showinfo), silent
//! segments (silencedetect), the EBU R128 summary (ebur128) and its momentary loudness
//! (ametadata printing ebur128's `lavfi.r128.M`).

/// What one stderr line told us.
#[derive(Debug, PartialEq)]
pub enum LogEvent {
    /// A video frame passed the showinfo filter at this time (seconds, six significant
    /// digits), with its integer timestamp; `key`: a keyframe (decoding can start there).
    Frame {
        time: f64,
        pts: Option<i64>,
        key: bool,
    },
    /// Seconds per timestamp unit of the frames showinfo reports.
    TimeBase(f64),
    SilenceStart(f64),
    SilenceEnd(f64),
    /// A line of the ebur128 summary (kept for [`parse_loudness_summary`]).
    LoudnessSummary(String),
    /// The time of the next [`Momentary`](Self::Momentary) reading (ametadata's frame line).
    MeterTime(f64),
    /// Momentary loudness (400 ms window, LUFS), ten readings a second.
    Momentary(f64),
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

/// A frame's time in seconds: exact from its integer timestamp `pts` when the `time_base`
/// is known, else showinfo's printed `time` (six significant digits).
pub fn frame_time(time: f64, pts: Option<i64>, time_base: Option<f64>) -> f64 {
    match (pts, time_base) {
        (Some(pts), Some(time_base)) => pts as f64 * time_base,
        _ => time,
    }
}

/// Classifies one stderr line. `in_summary` is true after the ebur128 "Summary:" line.
pub fn parse_line(line: &str, in_summary: &mut bool) -> LogEvent {
    if vidsight_media::is_showinfo(line) {
        if let Some(time_base) = vidsight_media::showinfo_time_base(line) {
            return LogEvent::TimeBase(time_base);
        }
        return match vidsight_media::showinfo_frame_time(line) {
            Some(time) => LogEvent::Frame {
                time,
                pts: vidsight_media::showinfo_frame_pts(line),
                key: line.contains(" iskey:1"),
            },
            None => LogEvent::Other,
        };
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
    if line.contains("Parsed_ametadata") {
        if let Some(value) = number_after(line, "lavfi.r128.M=") {
            return LogEvent::Momentary(finite_or_floor(value));
        }
        if let Some(time) = number_after(line, "pts_time:") {
            return LogEvent::MeterTime(time);
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

/// The longest loudness curve, in seconds (a week).
const MAX_CURVE_SECONDS: f64 = 7.0 * 24.0 * 3600.0;

pub(crate) fn finite_or_floor(value: f64) -> f64 {
    if value.is_finite() {
        value.max(LEVEL_FLOOR)
    } else {
        LEVEL_FLOOR
    }
}

/// Integrated loudness (LUFS) and loudness range (LU) from the summary (the true peak is
/// measured apart, see `peak`).
pub fn parse_loudness_summary(lines: &[String]) -> Option<(f64, f64)> {
    let mut integrated = None;
    let mut range = None;
    let mut section = "";
    for line in lines {
        let trimmed = line.trim();
        if trimmed.ends_with(':') && !trimmed.contains(' ')
            || trimmed.starts_with("Integrated")
            || trimmed.starts_with("Loudness range")
        {
            section = if trimmed.starts_with("Integrated") {
                "integrated"
            } else if trimmed.starts_with("Loudness range") {
                "range"
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
            _ => {}
        }
    }
    Some((
        finite_or_floor(integrated?),
        range.map(|value| if value.is_finite() { value } else { 0.0 })?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_showinfo_and_silencedetect_lines() {
        let mut summary = false;
        let frame = "[Parsed_showinfo_2 @ 0x5581] n:  12 pts:  6144 pts_time:0.48    duration:512 pos:1 fmt:rgb24 sar:1/1 s:480x270 i:P iskey:0 type:P";
        assert_eq!(
            parse_line(frame, &mut summary),
            LogEvent::Frame {
                time: 0.48,
                pts: Some(6144),
                key: false,
            }
        );
        let config = "[Parsed_showinfo_1 @ 0x555d] config in time_base: 1/15360, frame_rate: 30/1";
        assert_eq!(
            parse_line(config, &mut summary),
            LogEvent::TimeBase(1.0 / 15360.0)
        );
        let late = "[Parsed_showinfo_1 @ 0x5] n:99 pts:55296000 pts_time:3600    duration:512 i:P iskey:1 type:I";
        assert_eq!(
            parse_line(late, &mut summary),
            LogEvent::Frame {
                time: 3600.0,
                pts: Some(55296000),
                key: true,
            }
        );
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
        assert_eq!(parse_loudness_summary(&lines), Some((-23.4, 5.2)));
        let silent = vec![
            "Integrated loudness:".to_string(),
            "I:         -70.0 LUFS".into(),
            "Loudness range:".into(),
            "LRA:         0.0 LU".into(),
            "True peak:".into(),
            "Peak:        -inf dBFS".into(),
        ];
        assert_eq!(parse_loudness_summary(&silent), Some((-70.0, 0.0)));
    }
}

/// One loudness value per second (LUFS): the energy mean of the momentary readings taken in
/// that second. Seconds without a reading repeat the previous value.
pub fn loudness_curve(readings: &[(f64, f64)], duration: f64) -> Vec<f64> {
    // at most a week (a header may claim any duration; 7 MB of curve at most)
    let seconds = duration.ceil().clamp(0.0, MAX_CURVE_SECONDS) as usize;
    let mut energy = vec![0.0f64; seconds];
    let mut counts = vec![0u32; seconds];
    for (time, lufs) in readings {
        let second = time.max(0.0).floor() as usize;
        if second < seconds {
            energy[second] += 10f64.powf(lufs / 10.0);
            counts[second] += 1;
        }
    }
    let mut curve = Vec::with_capacity(seconds);
    let mut last = LEVEL_FLOOR;
    for (sum, count) in energy.iter().zip(counts) {
        if count > 0 {
            last = finite_or_floor((10.0 * (sum / count as f64).log10() * 10.0).round() / 10.0);
        }
        curve.push(last);
    }
    curve
}

#[cfg(test)]
mod curve_tests {
    use super::*;

    #[test]
    fn a_curve_is_never_longer_than_a_week_whatever_the_header_claims() {
        let readings = [
            (0.5, -23.0),
            (1e300, -20.0),
            (f64::NAN, -20.0),
            (-5.0, -30.0),
        ];
        assert_eq!(loudness_curve(&readings, 1e18).len(), 7 * 24 * 3600);
        assert_eq!(
            loudness_curve(&readings, f64::INFINITY).len(),
            7 * 24 * 3600
        );
        assert!(loudness_curve(&readings, f64::NAN).is_empty());
        assert!(loudness_curve(&readings, -1.0).is_empty());
        // readings before the start, or at no time, count in the first second; those past
        // the end in none
        assert_eq!(loudness_curve(&readings, 2.0), vec![-22.7, -22.7]);
    }

    #[test]
    fn meter_lines_are_read() {
        let mut in_summary = false;
        assert_eq!(
            parse_line(
                "[Parsed_ametadata_2 @ 0x5] frame:11   pts:48510   pts_time:1.1",
                &mut in_summary
            ),
            LogEvent::MeterTime(1.1)
        );
        assert_eq!(
            parse_line(
                "[Parsed_ametadata_2 @ 0x5] lavfi.r128.M=-23.5",
                &mut in_summary
            ),
            LogEvent::Momentary(-23.5)
        );
        assert_eq!(
            parse_line(
                "[Parsed_ametadata_2 @ 0x5] lavfi.r128.M=-inf",
                &mut in_summary
            ),
            LogEvent::Momentary(LEVEL_FLOOR)
        );
    }

    #[test]
    fn the_curve_has_one_energy_mean_per_second() {
        let readings = [
            (0.0, -20.0),
            (0.5, -20.0),
            (1.2, -10.0),
            (1.7, -30.0),
            (3.1, -40.0),
        ];
        let curve = loudness_curve(&readings, 3.5);
        assert_eq!(curve.len(), 4);
        assert_eq!(curve[0], -20.0);
        // mean of 10^-1 and 10^-3 → 10·log10(0.0505) = −13.0
        assert_eq!(curve[1], -13.0);
        assert_eq!(curve[2], -13.0, "a second without readings repeats");
        assert_eq!(curve[3], -40.0);
        // a header that claims a trillion seconds gets a week of curve, not an allocation
        // that takes the machine down
        let curve = loudness_curve(&readings, 1e12);
        assert_eq!(curve.len(), 7 * 24 * 3600);
    }
}
