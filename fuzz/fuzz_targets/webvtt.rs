//! A subtitle track's text, converted to WebVTT by ffmpeg but written by whoever made the
//! file: read into cues without panicking, whatever it holds.
#![no_main]

libfuzzer_sys::fuzz_target!(|text: &[u8]| {
    let text = String::from_utf8_lossy(text);
    for offset in [0.0, 12.5, -3.0] {
        let _ = vidsight_analysis::parse_webvtt(&text, offset);
    }
});
