//! ffmpeg's log as the analysis reads it (frame times, silences, momentary loudness, the
//! loudness summary), with lines that echo what the file holds (its metadata, stream
//! titles): classified, summed up and turned into a loudness curve without panicking,
//! whatever the lines say and whatever duration a header claims.
#![no_main]

use vidsight_analysis::{loudness_curve, parse_line, parse_loudness_summary, LogEvent};

libfuzzer_sys::fuzz_target!(|log: &[u8]| {
    let log = String::from_utf8_lossy(log);
    let lines: Vec<String> = log.lines().map(str::to_owned).collect();
    let (mut in_summary, mut meter_time, mut readings) = (false, 0.0, Vec::new());
    for line in &lines {
        match parse_line(line, &mut in_summary) {
            LogEvent::MeterTime(time) => meter_time = time,
            LogEvent::Momentary(lufs) => readings.push((meter_time, lufs)),
            _ => {}
        }
    }
    let _ = parse_loudness_summary(&lines);
    // (a week's curve at most, whatever is claimed: `loudness_curve`'s own test; asked
    // for on every input it would slow the target a hundredfold)
    for duration in [meter_time, f64::NAN] {
        let _ = loudness_curve(&readings, duration);
    }
});
