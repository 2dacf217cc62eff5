//! An MP4's index read from arbitrary bytes (an upload is untrusted input): listing and
//! guessing must return, whatever the file holds, without panicking, overflowing or
//! allocating without bound.
#![no_main]

libfuzzer_sys::fuzz_target!(|file: &[u8]| {
    vidsight_media::read_untrusted_mp4_index(file);
});
