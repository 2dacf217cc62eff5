//! ffprobe's JSON, whose strings and numbers come from an untrusted file (tags, rates,
//! aspect ratios, display matrices): read into the media facts, and the analysis frame size
//! made of them, without panicking or overflowing, whatever it holds.
#![no_main]

libfuzzer_sys::fuzz_target!(|json: &[u8]| {
    if let Ok(report) = vidsight_media::parse_probe_output(json) {
        if let Ok(media) = report.into_media_info() {
            let _ = vidsight_analysis::analysis_frame_size(&media, 480);
        }
    }
});
