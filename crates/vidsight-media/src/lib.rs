//! Media tools: ffprobe and ffmpeg run as child processes, never linked in.
//!
//! Every child gets a wall-clock timeout, an address-space and CPU-time limit, no stdin,
//! and is killed when its handle is dropped (a cancelled job never leaves ffmpeg behind).
//! An upload is untrusted input: inputs are opened through the `file:` protocol only and
//! the container must be one of a known list of video formats (no playlists, no concat
//! scripts that could make ffmpeg read other files or the network).
//!
//! One thing is read without them: an MP4's index (`mp4index`), which lists the video's
//! packets without starting ffprobe.

mod mp4index;
mod probe;
mod process;

/// For the fuzz target (`fuzz/`): see `mp4index::read_untrusted`.
#[doc(hidden)]
pub use mp4index::read_untrusted as read_untrusted_mp4_index;
pub use probe::{parse_probe_output, ProbeReport};
pub use process::{enlarge_pipe, spawn_error as classify_spawn_error, ChildLimits, ToolOutput};

use std::path::Path;
use std::time::Duration;
use vidsight_domain::{Error, ErrorCode, MediaInfo, Result};

/// Where the tools are and how they are bounded.
#[derive(Clone, Debug)]
pub struct MediaTools {
    pub ffmpeg: String,
    pub ffprobe: String,
    pub probe_timeout: Duration,
    pub analysis_timeout: Duration,
    pub limits: ChildLimits,
    /// Decoder threads for ffmpeg (0 = ffmpeg decides).
    pub threads: u32,
    /// The Tesseract OCR program.
    pub tesseract: String,
}

/// How much nicer than the analysis the processes started beside it run (see
/// [`MediaTools::yielding`]).
pub const YIELDING_NICE: i32 = 10;

impl Default for MediaTools {
    fn default() -> Self {
        Self {
            ffmpeg: "ffmpeg".into(),
            ffprobe: "ffprobe".into(),
            probe_timeout: Duration::from_secs(30),
            analysis_timeout: Duration::from_secs(3600),
            limits: ChildLimits::default(),
            threads: 0,
            tesseract: "tesseract".into(),
        }
    }
}

/// Which frames a decoder leaves out (ffmpeg's `-skip_frame`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipFrames {
    /// Every frame is decoded.
    None,
    /// Frames no other frame refers to (`noref`: the B-frames between a pyramid's).
    NonRef,
    /// Every B-frame (`bidir`): only I- and P-frames, the anchors. Valid only where no
    /// P-frame refers to a B-frame (x264 never does; x265 does, and the decoder then says
    /// a reference is missing, see [`missing_reference`]).
    Bidir,
}

impl SkipFrames {
    pub fn ffmpeg_value(self) -> Option<&'static str> {
        match self {
            SkipFrames::None => None,
            SkipFrames::NonRef => Some("noref"),
            SkipFrames::Bidir => Some("bidir"),
        }
    }

    pub fn as_str(self) -> &'static str {
        self.ffmpeg_value().unwrap_or("none")
    }
}

/// True for a decoder's complaint that a picture refers to one it does not have: what
/// leaving out frames that are referred to produces (H.264 and HEVC wordings).
pub fn missing_reference(line: &str) -> bool {
    [
        "Could not find ref with POC",
        "Missing reference picture",
        "reference picture missing",
        "co located POCs unavailable",
    ]
    .iter()
    .any(|needle| line.contains(needle))
}

impl MediaTools {
    /// These tools with their processes run nicer (by [`YIELDING_NICE`]): for the probe
    /// and the readable checks that `vidsight analyze` runs beside an analysis, which then
    /// keeps the cores (its decoder starts sooner and runs on a core of its own, and the
    /// checks fill what it leaves; on clips of a few seconds 0.01–0.04 s sooner,
    /// docs/benchmarks.md). What they find, and when they fail, is the same.
    pub fn yielding(&self) -> MediaTools {
        let mut tools = self.clone();
        tools.limits.nice = self.limits.nice.saturating_add(YIELDING_NICE);
        tools
    }

    /// A command for ffmpeg, limited and killed on drop.
    pub fn ffmpeg_command(&self) -> tokio::process::Command {
        process::limited_command(&self.ffmpeg, &self.limits)
    }

    /// The input options of an ffmpeg that decodes a file for measuring: local files only,
    /// the configured threads, no deblocking (it smooths block edges for the eye; on
    /// downscaled pictures it changes nothing the detectors measure, and skipping it saves
    /// about a fifth of H.264 decoding), and the frames `skip` says left out. They apply to
    /// the one `-i` they precede: a command that reads several inputs gives them before each.
    ///
    /// `threads` overrides the configured decoder threads (one per process when several
    /// processes decode parts of a video side by side).
    pub fn decoder_input_options(&self, skip: SkipFrames, threads: Option<u32>) -> Vec<String> {
        let mut options = vec!["-protocol_whitelist".to_owned(), "file".to_owned()];
        let threads = threads.unwrap_or(self.threads);
        if threads > 0 {
            options.extend(["-threads".to_owned(), threads.to_string()]);
        }
        options.extend(["-skip_loop_filter".to_owned(), "all".to_owned()]);
        if let Some(value) = skip.ffmpeg_value() {
            options.extend(["-skip_frame".to_owned(), value.to_owned()]);
        }
        options
    }

    /// Reads the technical facts of a file. Fails with a client error code when the file is
    /// not a usable video (empty, not media, truncated, no video stream).
    pub async fn probe(&self, path: &Path) -> Result<MediaInfo> {
        let size = tokio::fs::metadata(path)
            .await
            .map_err(|error| Error::internal("cannot read the file to probe").with_source(error))?
            .len();
        if size == 0 {
            return Err(Error::new(
                ErrorCode::EmptyFile,
                "the file is empty (0 bytes)",
            ));
        }
        let mut command = process::limited_command(&self.ffprobe, &self.limits);
        command
            .args(["-hide_banner", "-v", "error", "-protocol_whitelist", "file"])
            .args(["-print_format", "json", "-show_format", "-show_streams"])
            .arg(input_url(path));
        let output = process::run(command, self.probe_timeout, "ffprobe").await?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.success {
            return Err(classify_failure(&stderr));
        }
        let report = parse_probe_output(&output.stdout)?;
        report.into_media_info()
    }

    /// What [`probe`](Self::probe) will most likely say of an MP4/MOV, read from its index
    /// in a few milliseconds (see `mp4index::guess_report`); None for other files, and
    /// for what the index does not tell. A guess, to start work on before the probe ends:
    /// the probe decides.
    pub async fn guess(&self, path: &Path) -> Option<MediaInfo> {
        let path = path.to_owned();
        let report = tokio::task::spawn_blocking(move || mp4index::guess_report(&path))
            .await
            .ok()??;
        report.into_media_info().ok()
    }

    /// The cues of one text subtitle stream (SubRip, ASS/SSA, mov_text, WebVTT…), converted
    /// by ffmpeg to WebVTT. Image subtitles (DVD/PGS bitmaps) are not text and fail. At most
    /// `MAX_SUBTITLE_BYTES` of WebVTT are read; the rest of a larger track is dropped.
    pub async fn subtitle_webvtt(&self, path: &Path, stream_index: u32) -> Result<String> {
        let mut command = self.ffmpeg_command();
        command
            .args(["-hide_banner", "-nostdin", "-v", "error"])
            .args(["-protocol_whitelist", "file", "-i"])
            .arg(input_url(path))
            .args([
                "-map",
                &format!("0:{stream_index}"),
                "-f",
                "webvtt",
                "pipe:1",
            ]);
        let output = process::run(command, self.probe_timeout, "ffmpeg").await?;
        if !output.success {
            return Err(tool_failed(
                format!("subtitle stream {stream_index} could not be read as text"),
                &output.stderr,
            ));
        }
        Ok(bounded_cues(output.stdout))
    }

    /// Several text subtitle streams as WebVTT (see [`subtitle_webvtt`](Self::subtitle_webvtt)),
    /// by stream index: in one ffmpeg run, each written to its own file in a scratch
    /// directory (starting an ffmpeg costs more than reading a track); when that run fails,
    /// stream by stream, so that an unreadable track costs only itself.
    pub async fn subtitles_webvtt(
        &self,
        path: &Path,
        streams: &[u32],
    ) -> Vec<(u32, Result<String>)> {
        if streams.len() > 1 {
            match self.subtitles_in_one_run(path, streams).await {
                Ok(texts) => return texts,
                Err(error) => tracing::debug!(%error, "subtitle streams read one by one"),
            }
        }
        let mut texts = Vec::with_capacity(streams.len());
        for &stream in streams {
            texts.push((stream, self.subtitle_webvtt(path, stream).await));
        }
        texts
    }

    async fn subtitles_in_one_run(
        &self,
        path: &Path,
        streams: &[u32],
    ) -> Result<Vec<(u32, Result<String>)>> {
        let scratch = tempfile::tempdir().map_err(|error| {
            Error::new(
                ErrorCode::MediaToolFailed,
                "no scratch directory for subtitles",
            )
            .with_source(error)
        })?;
        let file_of = |stream: u32| scratch.path().join(format!("{stream}.vtt"));
        let mut command = self.ffmpeg_command();
        command
            .args(["-hide_banner", "-nostdin", "-v", "error"])
            .args(["-protocol_whitelist", "file", "-i"])
            .arg(input_url(path));
        for &stream in streams {
            command
                .args(["-map", &format!("0:{stream}"), "-f", "webvtt"])
                .arg(file_of(stream));
        }
        let output = process::run(command, self.probe_timeout, "ffmpeg").await?;
        if !output.success {
            return Err(tool_failed(
                "subtitle streams could not be read as text".to_owned(),
                &output.stderr,
            ));
        }
        let mut texts = Vec::with_capacity(streams.len());
        for &stream in streams {
            let text = read_bounded(&file_of(stream), MAX_SUBTITLE_BYTES + 1)
                .await
                .map(bounded_cues)
                .map_err(|error| {
                    Error::new(
                        ErrorCode::MediaToolFailed,
                        format!("subtitle stream {stream} could not be read back"),
                    )
                    .with_source(error)
                });
            texts.push((stream, text));
        }
        Ok(texts)
    }

    /// How the video stream of `media` is laid out, read without decoding anything: the
    /// times of its packets in the first `seconds`, and keyframes to start parts at near
    /// `targets` (see [`listed_layout`](Self::listed_layout)). Read from an MP4's index
    /// where it tells them ([`index_layout`](Self::index_layout): no process), listed by
    /// ffprobe otherwise.
    pub async fn stream_layout(
        &self,
        path: &Path,
        media: &MediaInfo,
        seconds: f64,
        targets: &[f64],
        exact_seek: bool,
    ) -> Result<StreamLayout> {
        let indexed = match exact_seek {
            true => self.index_layout(path, media, seconds, targets).await,
            false => None,
        };
        match indexed {
            Some(layout) => Ok(layout),
            None => {
                let start = media.start_time;
                self.listed_layout(path, start, seconds, targets, exact_seek)
                    .await
            }
        }
    }

    /// The stream's layout (see [`stream_layout`](Self::stream_layout)) as one ffprobe run
    /// lists it. Times are from the start as ffmpeg counts them (the file's start time,
    /// `start_time`, is 0).
    ///
    /// The keyframe nearest each target is taken (parts of even length finish together).
    /// With `exact_seek` (a container with an index: MP4, Matroska) ffprobe seeks to each
    /// target, lands on the keyframe at or before it and lists the packets from there to
    /// [`KEYFRAME_SEARCH_SECONDS`] past the target. Without (MPEG-TS/PS, where a seek only
    /// lands near the time asked) every packet of the stream is listed (it is read, not
    /// decoded: a fraction of a second a minute of 1080p); a stream whose timestamps jump (a
    /// recording spliced, a clock reset) is an error, as seeking in it lands anywhere.
    pub async fn listed_layout(
        &self,
        path: &Path,
        start_time: f64,
        seconds: f64,
        targets: &[f64],
        exact_seek: bool,
    ) -> Result<StreamLayout> {
        let mut args = vec!["-select_streams", "v:0"];
        let intervals;
        if exact_seek {
            // ffprobe seeks in the stream's own timeline
            intervals = std::iter::once(format!("%+{seconds:.3}"))
                .chain(targets.iter().map(|target| {
                    // the end as a time, not a duration: ffprobe counts a duration from
                    // the keyframe it landed on
                    let at = target + start_time;
                    format!("{at:.6}%{:.6}", at + KEYFRAME_SEARCH_SECONDS)
                }))
                .collect::<Vec<_>>()
                .join(",");
            args.extend(["-read_intervals", &intervals]);
        }
        args.extend([
            "-show_entries",
            "format=start_time:packet=pts_time,dts_time,flags",
        ]);
        let json = self.ffprobe_json(path, &args).await?;
        let unreadable = || {
            Error::new(
                ErrorCode::MediaToolFailed,
                "ffprobe's packet listing could not be read",
            )
        };
        let listing = parse_packet_listing(&json).ok_or_else(unreadable)?;
        if let Some(at) = (!exact_seek).then(|| timestamp_jump(&listing)).flatten() {
            return Err(Error::new(
                ErrorCode::MediaToolFailed,
                format!("the stream's timestamps jump at packet {at}: it cannot be seeked in"),
            ));
        }
        let mut layout = layout_of(&listing, seconds);
        layout.keyframes = nearest_keyframes(&layout.keyframes, targets);
        Ok(layout)
    }

    /// What [`listed_layout`](Self::listed_layout) finds, read from an MP4/MOV's index
    /// instead (see `mp4index`): no process, every keyframe to choose from. None where the
    /// file is another container, or one whose times this does not read as ffmpeg gives
    /// them; ffprobe lists it then.
    pub async fn index_layout(
        &self,
        path: &Path,
        media: &MediaInfo,
        seconds: f64,
        targets: &[f64],
    ) -> Option<StreamLayout> {
        if !media.container.split(',').any(|name| name == "mov") {
            return None;
        }
        // ffprobe's `v:0`: the first stream of video, a cover picture included
        let track = media
            .streams
            .iter()
            .position(|stream| stream.kind == "video" || stream.kind == "attachment")?;
        let (path, streams) = (path.to_owned(), media.streams.len());
        let listing =
            tokio::task::spawn_blocking(move || mp4index::video_listing(&path, track, streams))
                .await
                .ok()??;
        // to the microsecond, as ffprobe prints times: a part starts where it would
        // have, and the document is the same whichever listed the packets (only the
        // packets kept are printed: an hour has 108 000)
        let start = media.start_time;
        let printed = |time: f64| format!("{time:.6}").parse::<f64>().unwrap_or(time);
        let listing: Vec<(f64, bool)> = listing
            .into_iter()
            .filter(|(time, key)| *key || time - start <= seconds + 1.001)
            .map(|(time, key)| (printed(time) - start, key))
            .collect();
        let mut layout = layout_of(&listing, seconds);
        layout.keyframes = nearest_keyframes(&layout.keyframes, targets);
        Some(layout)
    }

    async fn ffprobe_json(&self, path: &Path, args: &[&str]) -> Result<Vec<u8>> {
        let mut command = process::limited_command(&self.ffprobe, &self.limits);
        command
            .args(["-hide_banner", "-v", "error", "-protocol_whitelist", "file"])
            .args(args)
            .args(["-print_format", "json"])
            .arg(input_url(path));
        let output = process::run(command, self.probe_timeout, "ffprobe").await?;
        if !output.success {
            return Err(tool_failed("ffprobe failed".into(), &output.stderr));
        }
        Ok(output.stdout)
    }

    /// The lines of text Tesseract reads in an image (JPEG/PNG bytes), with their mean word
    /// confidence (0–100), in reading order. `languages` is e.g. `eng` or `eng+por`.
    pub async fn ocr(&self, image: &[u8], languages: &str) -> Result<Vec<(String, f64)>> {
        use tokio::io::AsyncWriteExt;
        let mut command = process::limited_command(&self.tesseract, &self.limits);
        command
            .args(["stdin", "stdout", "-l", languages, "--psm", "11", "tsv"])
            .stdin(std::process::Stdio::piped());
        let mut child = command
            .spawn()
            .map_err(|error| process::spawn_error("tesseract", error))?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let image = image.to_vec();
        let writer = tokio::spawn(async move {
            let _ = stdin.write_all(&image).await;
        });
        let output = tokio::time::timeout(self.probe_timeout, child.wait_with_output())
            .await
            .map_err(|_| {
                Error::new(
                    ErrorCode::MediaTimeout,
                    "tesseract took too long and was stopped",
                )
            })?
            .map_err(|error| {
                Error::new(ErrorCode::MediaToolFailed, "tesseract could not be run")
                    .with_source(error)
            })?;
        let _ = writer.await;
        if !output.status.success() {
            return Err(Error::new(
                ErrorCode::MediaToolFailed,
                format!(
                    "tesseract failed: {}",
                    truncate(String::from_utf8_lossy(&output.stderr).trim(), 300)
                ),
            ));
        }
        Ok(parse_tesseract_tsv(&String::from_utf8_lossy(
            &output.stdout,
        )))
    }

    /// Probes, decodes the first video frame and reads the packets of the last second, so
    /// that a file whose headers parse but whose pictures do not — or whose data stops
    /// early, as when an upload with its index at the front was cut short — is refused at
    /// upload rather than failing later. The checks' first process needs nothing from the
    /// probe and runs beside it (a probe that fails ends it).
    pub async fn validate_upload(&self, path: &Path) -> Result<MediaInfo> {
        let (info, first) = self.probe_beside_first_check(path).await;
        let info = info?;
        self.check_readable_after(path, &info, first.await?).await?;
        Ok(info)
    }

    /// The probe, with the readable checks' first process (see
    /// [`first_readable_check`](Self::first_readable_check)) started beside it: the probe's
    /// answer, and the check's, finished or still to await (dropped, its process is killed).
    pub async fn probe_beside_first_check<'a>(
        &'a self,
        path: &'a Path,
    ) -> (
        Result<MediaInfo>,
        impl std::future::Future<Output = Result<bool>> + 'a,
    ) {
        let probe = self.probe(path);
        let first = self.first_readable_check(path);
        tokio::pin!(probe);
        let mut first = Box::pin(first);
        let mut finished = None;
        let info = loop {
            tokio::select! {
                info = &mut probe => break info,
                done = &mut first, if finished.is_none() => finished = Some(done),
            }
        };
        let rest = async move {
            match finished {
                Some(done) => done,
                None => first.await,
            }
        };
        (info, rest)
    }

    /// The readable checks in one ffmpeg (starting one costs about as much as either check):
    /// the first video frame decoded, the last second's packets read (all of them, in a
    /// video of a second or less). True when both went through.
    pub async fn first_readable_check(&self, path: &Path) -> Result<bool> {
        let mut both = self.ffmpeg_command();
        both.args(["-hide_banner", "-nostdin", "-v", "error", "-xerror"])
            .args(["-protocol_whitelist", "file", "-i"])
            .arg(input_url(path))
            .args(["-sseof", "-1", "-i"])
            .arg(input_url(path))
            .args(["-map", "0:v:0", "-frames:v", "1", "-f", "null", "-"])
            .args(["-map", "1:v:0", "-c", "copy", "-f", "null", "-"]);
        let output = process::run(both, self.probe_timeout, "ffmpeg").await?;
        Ok(output.success && !reports_partial_data(&output.stderr))
    }

    /// The rest of the readable checks, after [`first_readable_check`] (`passed`): where it
    /// failed, the checks run again one by one to tell which and say it in their own words
    /// (the last second's only past a second: a shorter video's is its first frame's).
    ///
    /// [`first_readable_check`]: Self::first_readable_check
    pub async fn check_readable_after(
        &self,
        path: &Path,
        info: &MediaInfo,
        passed: bool,
    ) -> Result<()> {
        if passed {
            return Ok(());
        }
        self.decode_check(path, &["-frames:v", "1"]).await?;
        if info.duration <= 1.0 {
            return Ok(());
        }
        self.tail_check(path).await
    }

    /// Reads (without decoding) the packets of the last second: a file whose data stops
    /// before its index says makes the demuxer report a partial file. Cheap at any size.
    async fn tail_check(&self, path: &Path) -> Result<()> {
        let mut command = self.ffmpeg_command();
        command
            .args([
                "-hide_banner",
                "-nostdin",
                "-v",
                "error",
                "-protocol_whitelist",
                "file",
            ])
            .args(["-sseof", "-1", "-i"])
            .arg(input_url(path))
            .args(["-map", "0:v:0", "-c", "copy", "-f", "null", "-"]);
        let output = process::run(command, self.probe_timeout, "ffmpeg").await?;
        if !output.success || reports_partial_data(&output.stderr) {
            return Err(Error::new(
                ErrorCode::TruncatedMedia,
                "the end of the video cannot be read: the file is truncated or damaged (was the upload cut short?)",
            ));
        }
        Ok(())
    }

    async fn decode_check(&self, path: &Path, output_args: &[&str]) -> Result<()> {
        let mut command = self.ffmpeg_command();
        command
            .args(["-hide_banner", "-nostdin", "-v", "error", "-xerror"])
            .args(["-protocol_whitelist", "file"])
            .arg("-i")
            .arg(input_url(path))
            .args(["-map", "0:v:0"])
            .args(output_args)
            .args(["-f", "null", "-"]);
        let output = process::run(command, self.probe_timeout, "ffmpeg").await?;
        if output.success {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let mut error = classify_failure(&stderr);
        if error.code == ErrorCode::NotAVideo || error.code == ErrorCode::UnsupportedMediaType {
            error = Error::new(
                ErrorCode::UndecodableMedia,
                "the video stream cannot be decoded",
            );
        }
        Err(error)
    }
}

/// WebVTT as text, at most `MAX_SUBTITLE_BYTES` of it, cut at the last cue boundary before
/// (no cue is half kept).
fn bounded_cues(mut text: Vec<u8>) -> String {
    if text.len() > MAX_SUBTITLE_BYTES {
        text.truncate(MAX_SUBTITLE_BYTES);
        let keep = text
            .windows(2)
            .rposition(|pair| pair == b"\n\n")
            .unwrap_or(0);
        text.truncate(keep);
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// The first `most` bytes of a file.
async fn read_bounded(path: &Path, most: usize) -> std::io::Result<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut text = Vec::new();
    tokio::fs::File::open(path)
        .await?
        .take(most as u64)
        .read_to_end(&mut text)
        .await?;
    Ok(text)
}

/// `media-tool-failed` saying what could not be done, with the end of the tool's stderr.
fn tool_failed(what: String, stderr: &[u8]) -> Error {
    let stderr = String::from_utf8_lossy(stderr);
    Error::new(
        ErrorCode::MediaToolFailed,
        format!("{what}: {}", truncate(stderr.trim(), 300)),
    )
}

/// What the start of a stream showed: the times (seconds) of the frames decoded with
/// non-reference frames skipped, and of every packet (from [`StreamLayout`]), in the order
/// read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DecodeSample {
    pub decoded: Vec<f64>,
    pub packets: Vec<f64>,
}

/// What [`MediaTools::stream_layout`] read: packet times (seconds from the start) in the
/// first seconds of the stream, in the order read, and keyframes found by seeking, sorted.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamLayout {
    pub packets: Vec<f64>,
    pub keyframes: Vec<f64>,
}

/// How far (seconds) a packet's timestamp may fall behind the latest one before it (frames
/// are stored out of display order, by well under this) in a stream taken to have a
/// continuous clock.
pub const MAX_TIMESTAMP_STEP_BACK: f64 = 2.0;
/// And how far it may run ahead (a gap in the recording).
pub const MAX_TIMESTAMP_STEP_AHEAD: f64 = 10.0;

/// How far on (in packets) the anchor after one with no presentation time is looked for.
const ANCHOR_SEARCH_PACKETS: usize = 16;

/// Every packet of a listing, in the order read: (seconds from the file's start, keyframe).
///
/// A container that stores no presentation times (AVI) leaves them out where frames are
/// reordered: ffmpeg then gives a B-frame its decoding time (it is shown when decoded) and
/// the anchors (I- and P-frames, shown later) none. Where B-frames do come (some packets have
/// a time, others only a decoding time) an anchor is shown when the next anchor is decoded,
/// as a decoder delaying one frame outputs it, and is given that time; the listing then
/// looks as one with presentation times would. A packet with neither time is left out.
fn parse_packet_listing(json: &[u8]) -> Option<Vec<(f64, bool)>> {
    #[derive(serde::Deserialize)]
    struct Report {
        #[serde(default)]
        packets: Vec<Packet>,
        format: Option<Format>,
    }
    #[derive(serde::Deserialize)]
    struct Packet {
        pts_time: Option<String>,
        dts_time: Option<String>,
        flags: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Format {
        start_time: Option<String>,
    }
    let report: Report = serde_json::from_slice(json).ok()?;
    let start = report
        .format
        .and_then(|format| format.start_time)
        .and_then(|time| time.parse::<f64>().ok())
        .filter(|time| time.is_finite())
        .unwrap_or(0.0);
    let seconds = |time: Option<String>| {
        time.and_then(|time| time.parse::<f64>().ok())
            .filter(|time| time.is_finite())
    };
    // (presentation time, decoding time, keyframe)
    let packets: Vec<(Option<f64>, Option<f64>, bool)> = report
        .packets
        .into_iter()
        .map(|packet| {
            let key = packet.flags.is_some_and(|flags| flags.starts_with('K'));
            (seconds(packet.pts_time), seconds(packet.dts_time), key)
        })
        .collect();
    let reordered = packets.iter().any(|(pts, _, _)| pts.is_some());
    // the next anchor: a packet shown later than decoded (no time, or a later one), a few
    // B-frames on at most, and close (anything else is not this layout: left out)
    let next_anchor = |index: usize, dts: f64| {
        let later = &packets[index + 1..];
        match later
            .iter()
            .take(ANCHOR_SEARCH_PACKETS)
            .find(|(pts, dts, _)| match (pts, dts) {
                (None, Some(_)) => true,
                (Some(pts), Some(dts)) => *pts > *dts + 1e-6,
                _ => false,
            }) {
            Some((_, next, _)) => next.filter(|next| *next > dts && *next - dts <= 1.0),
            // the last anchor: shown a frame after the last packet (a frame: the last step
            // between two packets, half a second at most)
            None if later.len() < ANCHOR_SEARCH_PACKETS => {
                let decoded = |at: usize| packets.get(at).and_then(|(_, dts, _)| *dts);
                let end = packets.len() - 1;
                let (last, before) = (decoded(end)?, decoded(end.checked_sub(1)?)?);
                let step = last - before;
                (step > 0.0 && step <= 0.5).then_some(last + step)
            }
            None => None,
        }
    };
    let mut listing = Vec::with_capacity(packets.len());
    for (index, &(pts, dts, key)) in packets.iter().enumerate() {
        let time = match (pts, dts) {
            (Some(pts), _) => Some(pts),
            (None, Some(dts)) if reordered => next_anchor(index, dts),
            _ => None,
        };
        if let Some(time) = time {
            listing.push((time - start, key));
        }
    }
    Some(listing)
}

/// The index of the first packet whose timestamp jumps back or ahead of the latest before
/// it by more than [`MAX_TIMESTAMP_STEP_BACK`] / [`MAX_TIMESTAMP_STEP_AHEAD`], if any.
fn timestamp_jump(listing: &[(f64, bool)]) -> Option<usize> {
    let mut latest = f64::NEG_INFINITY;
    for (index, (time, _)) in listing.iter().enumerate() {
        let back = *time < latest - MAX_TIMESTAMP_STEP_BACK;
        if latest.is_finite() && (back || *time > latest + MAX_TIMESTAMP_STEP_AHEAD) {
            return Some(index);
        }
        latest = latest.max(*time);
    }
    None
}

/// Seconds past each target the keyframes are looked for in a container with an index.
pub const KEYFRAME_SEARCH_SECONDS: f64 = 5.0;

/// For each target, the nearest of `keyframes` (sorted; the earlier of two as near),
/// duplicates dropped.
pub fn nearest_keyframes(keyframes: &[f64], targets: &[f64]) -> Vec<f64> {
    let mut found: Vec<f64> = targets
        .iter()
        .filter_map(|target| {
            keyframes
                .iter()
                .copied()
                .min_by(|a, b| (a - target).abs().total_cmp(&(b - target).abs()))
        })
        .collect();
    found.sort_by(f64::total_cmp);
    found.dedup_by(|a, b| (*a - *b).abs() < 1e-6);
    found
}

/// Reads ffprobe's JSON listing of packets and format. Packets up to a second past
/// `seconds` belong to the start; every keyframe listed is kept, sorted.
pub fn parse_stream_layout(json: &[u8], seconds: f64) -> Option<StreamLayout> {
    Some(layout_of(&parse_packet_listing(json)?, seconds))
}

/// A listing sorted out: packets up to a second past `seconds`, every keyframe (sorted).
fn layout_of(listing: &[(f64, bool)], seconds: f64) -> StreamLayout {
    let mut layout = StreamLayout::default();
    for &(time, key) in listing {
        if time <= seconds + 1.0 {
            layout.packets.push(time);
        }
        if key {
            layout.keyframes.push(time);
        }
    }
    layout.keyframes.sort_by(f64::total_cmp);
    layout.keyframes.dedup_by(|a, b| (*a - *b).abs() < 1e-6);
    layout
}

/// Whether a demuxer's messages say the data stops before the file's index says it does.
fn reports_partial_data(stderr: &[u8]) -> bool {
    let stderr = String::from_utf8_lossy(stderr).to_ascii_lowercase();
    stderr.contains("partial file") || stderr.contains("invalid nal")
}

/// The time (seconds) of the frame a showinfo line reports, if it reports one (showinfo
/// also prints its configuration and side data).
pub fn showinfo_frame_time(line: &str) -> Option<f64> {
    if !is_showinfo(line) || !line.contains(" n:") {
        return None;
    }
    let rest = &line[line.find("pts_time:")? + "pts_time:".len()..];
    rest.split_whitespace().next()?.parse().ok()
}

/// True for a line showinfo printed: unnamed (`Parsed_showinfo_N`), or named in the
/// filter graph (`showinfo@name`, one per input of a command that reads several).
pub fn is_showinfo(line: &str) -> bool {
    line.contains("Parsed_showinfo") || line.contains("[showinfo@")
}

/// The integer timestamp of the frame a showinfo line reports (`pts:`): with the time base
/// of [`showinfo_time_base`], the exact time, where `pts_time` has six significant digits
/// (10 ms steps past 1000 s).
pub fn showinfo_frame_pts(line: &str) -> Option<i64> {
    if !is_showinfo(line) || !line.contains(" n:") {
        return None;
    }
    let rest = &line[line.find(" pts:")? + " pts:".len()..];
    rest.split_whitespace().next()?.parse().ok()
}

/// Seconds per timestamp unit of the frames showinfo reports, from its `config in
/// time_base: N/D` line.
pub fn showinfo_time_base(line: &str) -> Option<f64> {
    if !is_showinfo(line) {
        return None;
    }
    let rest = &line[line.find("config in time_base:")? + "config in time_base:".len()..];
    let fraction = rest.split(',').next()?.trim();
    let (num, den) = fraction.split_once('/')?;
    let (num, den) = (
        num.trim().parse::<f64>().ok()?,
        den.trim().parse::<f64>().ok()?,
    );
    (num > 0.0 && den > 0.0).then(|| num / den)
}

/// Lines from Tesseract's TSV output: words (level 5) grouped by block, paragraph and line,
/// each line with the mean confidence of its words. Words Tesseract is unsure of (confidence
/// under 30) are dropped.
pub fn parse_tesseract_tsv(tsv: &str) -> Vec<(String, f64)> {
    // (block, paragraph, line) → its words and the sum of their confidences
    type Line = ((u32, u32, u32), Vec<String>, f64);
    let mut lines: Vec<Line> = Vec::new();
    for row in tsv.lines().skip(1) {
        let cells: Vec<&str> = row.split('\t').collect();
        if cells.len() < 12 || cells[0] != "5" {
            continue;
        }
        let number = |at: usize| cells[at].trim().parse::<u32>().unwrap_or(0);
        let confidence: f64 = cells[10].trim().parse().unwrap_or(-1.0);
        let word = cells[11].trim();
        if word.is_empty() || confidence < 30.0 {
            continue;
        }
        let key = (number(2), number(3), number(4));
        match lines.last_mut() {
            Some((last, words, sum)) if *last == key => {
                words.push(word.to_owned());
                *sum += confidence;
            }
            _ => lines.push((key, vec![word.to_owned()], confidence)),
        }
    }
    lines
        .into_iter()
        .map(|(_, words, sum)| {
            let confidence = sum / words.len() as f64;
            (words.join(" "), (confidence * 10.0).round() / 10.0)
        })
        .collect()
}

/// The most WebVTT text read from one subtitle stream (a feature film's track is ~100 KiB).
pub const MAX_SUBTITLE_BYTES: usize = 4 * 1024 * 1024;

/// Subtitle codecs ffmpeg can turn into text.
pub fn is_text_subtitle(codec: &str) -> bool {
    matches!(
        codec,
        "subrip"
            | "srt"
            | "ass"
            | "ssa"
            | "mov_text"
            | "webvtt"
            | "text"
            | "microdvd"
            | "subviewer"
            | "subviewer1"
            | "sami"
            | "realtext"
            | "jacosub"
            | "mpl2"
            | "pjs"
            | "vplayer"
            | "stl"
            | "eia_608"
    )
}

/// The input URL ffmpeg is given: the `file:` protocol, so a name can never be read as
/// another protocol or as an option.
pub fn input_url(path: &Path) -> String {
    format!("file:{}", path.display())
}

/// Maps ffprobe/ffmpeg error output to a stable code with a human message.
pub fn classify_failure(stderr: &str) -> Error {
    let lower = stderr.to_ascii_lowercase();
    let first_line = stderr
        .lines()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("no output")
        .trim();
    if lower.contains("moov atom not found")
        || lower.contains("end of file")
        || lower.contains("partial file")
        || lower.contains("truncat")
    {
        Error::new(
            ErrorCode::TruncatedMedia,
            "the file is truncated: it ends before the video does (was the upload cut short?)",
        )
    } else if lower.contains("invalid data found when processing input")
        || lower.contains("unknown format")
        || lower.contains("could not find codec parameters")
    {
        Error::new(
            ErrorCode::UnsupportedMediaType,
            "the file is not a video format vidsight can read",
        )
    } else if lower.contains("error while decoding")
        || lower.contains("invalid nal")
        || lower.contains("decode")
    {
        Error::new(
            ErrorCode::UndecodableMedia,
            "the video stream cannot be decoded",
        )
    } else {
        Error::new(
            ErrorCode::UndecodableMedia,
            format!(
                "the media tools could not read the file: {}",
                truncate(first_line, 200)
            ),
        )
    }
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((index, _)) => &text[..index],
        None => text,
    }
}

impl MediaTools {
    /// Writes a compressed proxy of `input` to `output` (MP4, H.264 + AAC): at most
    /// `max_height` lines and `fps` frames per second, the audio kept (mono, 64 kb/s) — what
    /// a model that samples a few frames a second at reduced resolution sees of the original,
    /// in a fraction of the bytes.
    pub async fn proxy(
        &self,
        input: &Path,
        output: &Path,
        max_height: u32,
        fps: f64,
    ) -> Result<()> {
        let mut command = self.ffmpeg_command();
        command
            .args(["-hide_banner", "-nostdin", "-v", "error", "-y"])
            .args(["-protocol_whitelist", "file", "-i"])
            .arg(input_url(input))
            .args(["-map", "0:v:0", "-map", "0:a:0?", "-sn", "-dn"])
            .args([
                "-vf",
                &format!("scale=-2:'min({max_height},ih)':flags=bicubic,fps={fps}"),
            ])
            .args(["-c:v", "libx264", "-preset", "veryfast", "-crf", "30"])
            .args([
                "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "1", "-b:a", "64k",
            ])
            .args(["-movflags", "+faststart", "-f", "mp4"])
            .arg(input_url(output));
        let result = process::run(command, self.analysis_timeout, "ffmpeg").await?;
        if !result.success {
            return Err(tool_failed(
                "the compressed proxy could not be made".into(),
                &result.stderr,
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subtitle_tracks_are_read_in_one_run_and_one_by_one_when_it_fails() {
        let dir = tempfile::tempdir().unwrap();
        let (english, portuguese) = (dir.path().join("en.srt"), dir.path().join("pt.srt"));
        std::fs::write(&english, "1\n00:00:00,500 --> 00:00:01,500\nhello\n\n").unwrap();
        std::fs::write(&portuguese, "1\n00:00:01,000 --> 00:00:02,000\nolá\n\n").unwrap();
        let file = dir.path().join("talk.mkv");
        let status = std::process::Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=64x48:rate=5:duration=3",
            ])
            .arg("-i")
            .arg(&english)
            .arg("-i")
            .arg(&portuguese)
            .args(["-map", "0", "-map", "1", "-map", "2", "-c:s", "srt"])
            .arg(&file)
            .status()
            .unwrap();
        assert!(status.success());
        let tools = MediaTools::default();
        let texts = tools.subtitles_webvtt(&file, &[1, 2]).await;
        let cues: Vec<_> = texts
            .iter()
            .map(|(stream, text)| (*stream, text.as_ref().unwrap()))
            .collect();
        assert_eq!(cues[0].0, 1);
        assert!(
            cues[0].1.starts_with("WEBVTT") && cues[0].1.contains("hello"),
            "{cues:?}"
        );
        assert!(
            cues[1].1.contains("olá") && !cues[1].1.contains("hello"),
            "{cues:?}"
        );
        let one_run = tools.subtitles_in_one_run(&file, &[1, 2]).await.unwrap();
        assert!(one_run[1].1.as_ref().unwrap().contains("olá"));
        // a stream that is no text (the pictures) fails the one run: the tracks are then
        // read one by one, and only that one is lost
        assert!(tools.subtitles_in_one_run(&file, &[2, 0, 1]).await.is_err());
        let texts = tools.subtitles_webvtt(&file, &[2, 0, 1]).await;
        assert!(texts[0].1.as_ref().unwrap().contains("olá"));
        assert!(texts[1].1.is_err());
        assert!(texts[2].1.as_ref().unwrap().contains("hello"));
    }

    /// An MP4's index lists what ffprobe lists (every packet of the first video stream,
    /// its time on the file's clock and whether it is a keyframe), where it reads the file
    /// at all; where it does not (an edit that starts inside the stream, a fragmented
    /// file), it says so and ffprobe is asked.
    #[tokio::test]
    async fn the_mp4_index_lists_what_ffprobe_lists() {
        let dir = tempfile::tempdir().unwrap();
        let picture = "testsrc2=size=160x120:rate=25:duration=4";
        let make = |name: &str, args: &[&str]| made_with_ffmpeg(dir.path(), name, args);
        let x264 = ["-c:v", "libx264", "-bf", "3", "-g", "30"];
        let bframes = make(
            "bframes.mp4",
            &[&["-f", "lavfi", "-i", picture][..], &x264].concat(),
        );
        let source = bframes.to_str().unwrap();
        let copy = |extra: &[&'static str]| [&["-i", source, "-c", "copy"][..], extra].concat();
        let mut readable = vec![
            bframes.clone(),
            make("no-edit-list.mp4", &copy(&["-use_editlist", "0"])),
            make(
                "negative.mp4",
                &copy(&["-movflags", "negative_cts_offsets"]),
            ),
            make("bframes.mov", &copy(&[])),
            // a picture that starts after the sound: an empty edit first
            make(
                "late.mp4",
                &[
                    &["-f", "lavfi", "-i", "sine=duration=5", "-itsoffset", "0.5"][..],
                    &["-f", "lavfi", "-i", picture, "-map", "0:a", "-map", "1:v"],
                    &x264,
                    &["-c:a", "aac", "-copyts"],
                ]
                .concat(),
            ),
            make(
                "mpeg4.mp4",
                &["-f", "lavfi", "-i", picture, "-c:v", "mpeg4", "-bf", "2"],
            ),
        ];
        let unreadable = vec![
            // the edit starts inside the stream: ffmpeg drops and retimes samples
            make("cut.mp4", &["-ss", "1.3", "-i", source, "-c", "copy"]),
            make(
                "fragmented.mp4",
                &copy(&["-movflags", "frag_keyframe+empty_moov"]),
            ),
        ];
        let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/media");
        if let Some(media) = Some(shared).filter(|dir| dir.is_dir()) {
            let mut clips: Vec<_> = std::fs::read_dir(media)
                .unwrap()
                .map(|entry| entry.unwrap().path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "mp4"))
                .collect();
            clips.sort();
            readable.extend(clips);
        } else {
            eprintln!("../shared/media is absent: only generated files are listed");
        }
        let tools = MediaTools::default();
        let args = [
            "-select_streams",
            "v:0",
            "-show_entries",
            "format=start_time:packet=pts_time,dts_time,flags",
        ];
        // the probe, and what the index lists of the first video stream it finds
        type Listed = (MediaInfo, Option<Vec<(f64, bool)>>);
        async fn listing(tools: &MediaTools, file: &Path) -> Listed {
            let media = tools.probe(file).await.unwrap();
            let track = media.streams.iter().position(|s| s.kind == "video");
            let listed = mp4index::video_listing(file, track.unwrap(), media.streams.len());
            (media, listed)
        }
        for file in &readable {
            let (media, listed) = listing(&tools, file).await;
            let listed = listed.unwrap_or_else(|| panic!("{file:?} not read"));
            let json = tools.ffprobe_json(file, &args).await.unwrap();
            let expected = parse_packet_listing(&json).unwrap();
            assert_eq!(listed.len(), expected.len(), "{file:?}");
            for (index, ((time, key), (want, want_key))) in listed.iter().zip(&expected).enumerate()
            {
                let time = time - media.start_time;
                assert!(
                    (time - want).abs() < 2e-6 && key == want_key,
                    "{file:?} packet {index}: {time} {key} against ffprobe's {want} {want_key}"
                );
            }
            // the layout the analysis asks for: the start's packets, the nearest keyframe
            let layout = tools.index_layout(file, &media, 2.0, &[1.0]).await.unwrap();
            assert_eq!(layout.keyframes.len(), 1, "{file:?}");
            assert!(!layout.packets.is_empty() && layout.packets.iter().all(|t| *t <= 3.0));
        }
        for file in &unreadable {
            assert!(listing(&tools, file).await.1.is_none(), "{file:?}");
        }
        // another track than the first video one, or a count of streams that is not the
        // file's tracks (a cover picture is a stream of no track)
        let media = tools.probe(&readable[4]).await.unwrap();
        assert!(mp4index::video_listing(&readable[4], 0, 2).is_none());
        assert!(mp4index::video_listing(&readable[4], 1, 3).is_none());
        assert!(mp4index::video_listing(&readable[4], 1, media.streams.len()).is_some());
    }

    #[test]
    fn a_missing_reference_is_recognised_in_either_codec() {
        assert!(missing_reference(
            "[hevc @ 0x55fd79a21700] Could not find ref with POC 102"
        ));
        assert!(missing_reference(
            "[h264 @ 0x1] Missing reference picture, default is 65530"
        ));
        assert!(!missing_reference("[h264 @ 0x1] mmco: unref short failure"));
        assert_eq!(SkipFrames::Bidir.ffmpeg_value(), Some("bidir"));
        assert_eq!(SkipFrames::None.as_str(), "none");
    }

    #[test]
    fn stream_layout_is_read_on_the_files_clock() {
        // start time 7 s: the first 4 s of packets (decode order), then what three seeks found
        let json = br#"{"packets": [
            {"pts_time": "7.000000", "flags": "K_"},
            {"pts_time": "7.100000", "flags": "__"},
            {"pts_time": "7.033333", "flags": "__"},
            {"flags": "__"},
            {"pts_time": "18.266667", "flags": "K_"},
            {"pts_time": "16.000000", "flags": "K_"},
            {"pts_time": "16.000000", "flags": "K_"},
            {"pts_time": "20.033333", "flags": "__"}
        ], "format": {"start_time": "7.000000"}}"#;
        let layout = parse_stream_layout(json, 4.0).unwrap();
        assert_eq!(layout.packets.len(), 3);
        assert!((layout.packets[1] - 0.1).abs() < 1e-9, "{layout:?}");
        assert_eq!(layout.keyframes.len(), 3, "{layout:?}");
        assert_eq!(layout.keyframes[0], 0.0);
        assert!((layout.keyframes[1] - 9.0).abs() < 1e-9);
        assert!((layout.keyframes[2] - 11.266667).abs() < 1e-9);
        assert!(parse_stream_layout(b"not json", 4.0).is_none());
        assert_eq!(
            parse_stream_layout(br#"{"packets": []}"#, 4.0),
            Some(StreamLayout::default())
        );
    }

    #[test]
    fn a_full_listing_is_read_on_the_files_clock_and_jumps_are_found() {
        let json = br#"{"packets": [
            {"pts_time": "1.400000", "flags": "K_"},
            {"pts_time": "1.500000", "flags": "__"},
            {"pts_time": "1.466667", "flags": "__"},
            {"flags": "__"},
            {"pts_time": "9.400000", "flags": "K_"}
        ], "format": {"start_time": "1.400000"}}"#;
        let listing = parse_packet_listing(json).unwrap();
        assert_eq!(listing.len(), 4);
        assert!((listing[3].0 - 8.0).abs() < 1e-9 && listing[3].1);
        assert_eq!(layout_of(&listing, 4.0).keyframes.len(), 2);
        assert_eq!(timestamp_jump(&listing), None);
        // two recordings spliced: the clock starts again
        let spliced = [
            (0.0, true),
            (0.04, false),
            (4.96, false),
            (0.0, true),
            (0.04, false),
        ];
        assert_eq!(timestamp_jump(&spliced), Some(3));
        // a gap of a minute
        assert_eq!(timestamp_jump(&[(0.0, true), (60.0, true)]), Some(1));
        assert!(parse_packet_listing(b"[").is_none());
    }

    #[test]
    fn anchors_without_a_presentation_time_are_shown_when_the_next_is_decoded() {
        // MPEG-4 Part 2 with two B-frames in AVI, as ffprobe lists it: the B-frames have
        // their decoding time, the anchors none
        let json = br#"{"packets": [
            {"pts_time": "N/A", "dts_time": "0.000000", "flags": "K_"},
            {"pts_time": "N/A", "dts_time": "0.040000", "flags": "__"},
            {"pts_time": "0.080000", "dts_time": "0.080000", "flags": "__"},
            {"pts_time": "0.120000", "dts_time": "0.120000", "flags": "__"},
            {"pts_time": "N/A", "dts_time": "0.160000", "flags": "K_"},
            {"pts_time": "0.200000", "dts_time": "0.200000", "flags": "__"},
            {"pts_time": "0.240000", "dts_time": "0.240000", "flags": "__"},
            {"pts_time": "N/A", "dts_time": "0.280000", "flags": "__"}
        ], "format": {"start_time": "0.000000"}}"#;
        // the times listed, to the millisecond
        let times = |json: &[u8]| -> Vec<f64> {
            parse_packet_listing(json)
                .unwrap()
                .iter()
                .map(|(time, _)| (time * 1000.0).round() / 1000.0)
                .collect()
        };
        // shown in order 0.04, 0.08, 0.12, 0.16, …: the I-frame when the first P-frame is
        // decoded, that P-frame when the next anchor is (the last, with none after, a frame
        // after the last packet)
        assert_eq!(times(json), [0.04, 0.16, 0.08, 0.12, 0.28, 0.2, 0.24, 0.32]);
        let layout = parse_stream_layout(json, 4.0).unwrap();
        assert_eq!(layout.keyframes.len(), 2);
        assert!((layout.keyframes[0] - 0.04).abs() < 1e-9);
        assert!((layout.keyframes[1] - 0.28).abs() < 1e-9);
        // an anchor with a time of its own is the next anchor too; one whose next anchor is
        // seconds away is not this layout, and is left out
        let json = br#"{"packets": [
            {"pts_time": "N/A", "dts_time": "0.000000", "flags": "K_"},
            {"pts_time": "0.120000", "dts_time": "0.040000", "flags": "__"},
            {"pts_time": "0.080000", "dts_time": "0.080000", "flags": "__"},
            {"pts_time": "N/A", "dts_time": "0.120000", "flags": "__"},
            {"pts_time": "5.000000", "dts_time": "5.000000", "flags": "__"},
            {"pts_time": "N/A", "dts_time": "6.000000", "flags": "__"}
        ]}"#;
        assert_eq!(times(json), [0.04, 0.12, 0.08, 5.0]);
        // a stream with no presentation time at all says nothing of its order
        let json = br#"{"packets": [
            {"pts_time": "N/A", "dts_time": "0.000000", "flags": "K_"},
            {"pts_time": "N/A", "dts_time": "0.040000", "flags": "__"}
        ]}"#;
        assert!(parse_packet_listing(json).unwrap().is_empty());
    }

    #[test]
    fn the_keyframe_nearest_each_target_is_taken() {
        let keyframes = [8.0, 12.5, 19.0, 22.0, 31.0];
        assert_eq!(
            nearest_keyframes(&keyframes, &[10.0, 20.0, 30.0]),
            vec![8.0, 19.0, 31.0]
        );
        // two targets nearest one keyframe give it once; past the last, the last
        assert_eq!(
            nearest_keyframes(&keyframes, &[21.0, 22.5, 40.0]),
            vec![22.0, 31.0]
        );
        assert_eq!(nearest_keyframes(&[], &[5.0]), Vec::<f64>::new());
    }

    #[test]
    fn showinfo_integer_timestamps_and_time_base_are_read() {
        let config =
            "[Parsed_showinfo_1 @ 0x55] config in time_base: 1001/30000, frame_rate: 30000/1001";
        assert_eq!(showinfo_time_base(config), Some(1001.0 / 30000.0));
        assert_eq!(
            showinfo_time_base("[Parsed_showinfo_1 @ 0x55] config in time_base: 0/0"),
            None
        );
        let frame =
            "[Parsed_showinfo_1 @ 0x55] n:4000 pts:107892 pts_time:3599.96 pos:1 fmt:yuv420p";
        assert_eq!(showinfo_frame_pts(frame), Some(107892));
        assert_eq!(showinfo_frame_time(frame), Some(3599.96));
        assert_eq!(
            showinfo_frame_pts("[Parsed_showinfo_1 @ 0x55]   side data"),
            None
        );
    }

    #[test]
    fn tesseract_words_become_lines_with_their_confidence() {
        let tsv = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n\
                   1\t1\t0\t0\t0\t0\t0\t0\t640\t360\t-1\t\n\
                   5\t1\t1\t1\t1\t1\t60\t150\t200\t40\t96\tBREAKING\n\
                   5\t1\t1\t1\t1\t2\t270\t150\t120\t40\t94\tNEWS\n\
                   5\t1\t2\t1\t1\t1\t10\t300\t30\t20\t12\t~\n\
                   5\t1\t3\t1\t1\t1\t10\t320\t90\t20\t71.5\tLisbon\n";
        assert_eq!(
            parse_tesseract_tsv(tsv),
            vec![
                ("BREAKING NEWS".to_owned(), 95.0),
                ("Lisbon".to_owned(), 71.5)
            ]
        );
    }

    /// The guess read from an MP4's index is what the probe says, on the files it guesses
    /// (generated ones like most uploads, and the shared clips), in everything the index
    /// holds; and it guesses no file it cannot describe.
    #[tokio::test]
    async fn the_index_guesses_what_the_probe_says() {
        let dir = tempfile::tempdir().unwrap();
        let picture = "testsrc2=size=320x240:rate=25:duration=4";
        let make = |name: &str, args: &[&str]| made_with_ffmpeg(dir.path(), name, args);
        let x264 = ["-c:v", "libx264", "-preset", "ultrafast"];
        let sound = ["-f", "lavfi", "-i", "sine=duration=4"];
        let mut guessed = vec![
            make(
                "bframes.mp4",
                &[&["-f", "lavfi", "-i", picture, "-bf", "3"][..], &x264[..2]].concat(),
            ),
            make(
                "intra.mp4",
                &[&["-f", "lavfi", "-i", picture][..], &x264].concat(),
            ),
            make(
                "sound.mp4",
                &[
                    &["-f", "lavfi", "-i", picture][..],
                    &sound,
                    &x264,
                    &["-c:a", "aac"],
                ]
                .concat(),
            ),
            make(
                "mpeg4.mov",
                &["-f", "lavfi", "-i", picture, "-c:v", "mpeg4", "-bf", "2"],
            ),
            make(
                "turned.mp4",
                &[
                    &["-f", "lavfi", "-i", picture, "-metadata:s:v", "rotate=90"][..],
                    &x264,
                ]
                .concat(),
            ),
            make(
                "hevc.mp4",
                &[
                    "-f",
                    "lavfi",
                    "-i",
                    picture,
                    "-c:v",
                    "libx265",
                    "-preset",
                    "ultrafast",
                    "-x265-params",
                    "log-level=error",
                ],
            ),
        ];
        let not_guessed = vec![
            make(
                "subtitles.mp4",
                &[
                    &["-f", "lavfi", "-i", picture, "-f", "srt", "-i"][..],
                    &[subtitles(dir.path()).as_str()],
                    &x264,
                    &["-c:s", "mov_text"],
                ]
                .concat(),
            ),
            make(
                "vp9.mp4",
                &[
                    "-f",
                    "lavfi",
                    "-i",
                    "testsrc2=size=160x120:rate=25:duration=1",
                    "-c:v",
                    "libvpx-vp9",
                    "-deadline",
                    "realtime",
                ],
            ),
            make(
                "fragmented.mp4",
                &[
                    &["-f", "lavfi", "-i", picture][..],
                    &x264,
                    &["-movflags", "frag_keyframe+empty_moov"],
                ]
                .concat(),
            ),
            make(
                "clip.mkv",
                &[&["-f", "lavfi", "-i", picture][..], &x264].concat(),
            ),
        ];
        let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/media");
        if shared.is_dir() {
            // those whose pictures' headers say what the index does not (non-square pixels
            // in the H.264 headers, a reorder depth: checked by the probe, not guessed)
            for clip in [
                "testvideo.mp4",
                "bikes.mp4",
                "bigbuckbunny.mp4",
                "fades.mp4",
                "issue-134-rotate.mp4",
            ] {
                guessed.push(shared.join(clip));
            }
        } else {
            eprintln!("../shared/media is absent: only generated files are guessed");
        }
        let tools = MediaTools::default();
        for file in &guessed {
            let probed = tools.probe(file).await.unwrap();
            let guess = tools
                .guess(file)
                .await
                .unwrap_or_else(|| panic!("{file:?} not guessed"));
            // what the index holds; not the bit rates, the sound's format, the names
            let held = |media: &MediaInfo| {
                format!(
                    "{:?}",
                    (
                        (&media.container, media.duration, media.start_time),
                        (
                            media.width,
                            media.height,
                            media.display_width,
                            media.display_height
                        ),
                        (&media.display_aspect, &media.sample_aspect, media.rotation),
                        (media.fps, media.variable_frame_rate, media.frame_count),
                        (
                            &media.video_codec,
                            media.reorder_delay == Some(0),
                            &media.audio_codec
                        ),
                        media
                            .streams
                            .iter()
                            .map(|s| (s.index, &s.kind, &s.codec))
                            .collect::<Vec<_>>(),
                    )
                )
            };
            assert_eq!(held(&guess), held(&probed), "{file:?}");
        }
        for file in &not_guessed {
            assert!(tools.guess(file).await.is_none(), "{file:?}");
        }
    }

    /// `dir/name`, written by ffmpeg from `args` (its inputs and output options).
    fn made_with_ffmpeg(dir: &Path, name: &str, args: &[&str]) -> std::path::PathBuf {
        let file = dir.join(name);
        let status = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-y"])
            .args(args)
            .arg(&file)
            .status()
            .unwrap();
        assert!(status.success(), "{name}");
        file
    }

    fn subtitles(dir: &Path) -> String {
        let file = dir.join("cues.srt");
        std::fs::write(&file, "1\n00:00:00,500 --> 00:00:02,000\nHello\n").unwrap();
        file.to_str().unwrap().to_owned()
    }
}
