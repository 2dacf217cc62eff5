//! The local analyzer, v1: one ffmpeg decoding pass yields, together,
//! - downscaled RGB frames on stdout, from which we find hard cuts, black frames and one
//!   keyframe per shot;
//! - per-frame timestamps (showinfo), so variable-frame-rate video gets exact times;
//! - silent segments (silencedetect) and EBU R128 loudness (ebur128) from the audio, whose
//!   samples, on a pipe of their own, give the true peak (`peak`).
//!
//! From the same frames come each keyframe's small thumbnail, the storyboard's sprite sheets
//! (seek-bar previews) and colour-bar ranges: nothing is decoded twice.
//!
//! The pixel work is done here rather than by ffmpeg's scene filters so that the cut score
//! matches PySceneDetect's ContentDetector and one pass feeds every detector.

mod bars;
mod boundaries;
mod captions;
mod decode;
pub mod fingerprint;
mod frames;
mod images;
mod logparse;
mod ocr;
mod peak;
mod refine;
mod shots;
mod source;
mod storyboard;
#[cfg(test)]
mod testing;

pub use bars::is_test_pattern;
pub use boundaries::{Boundary, BoundaryDetector, BoundarySettings, GradualKind, Thumb};
pub use captions::parse_webvtt;
pub use frames::{dark_pixel_share, HsvFrame};
pub use images::{resize_area, scaled_size, Image};
pub use logparse::{loudness_curve, parse_line, parse_loudness_summary, LogEvent, LEVEL_FLOOR};
use shots::ShotBuilder;
pub use storyboard::tile_interval;
use storyboard::StoryboardBuilder;

use images::encode_jpeg;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use vidsight_domain::insights::{
    Loudness, Scene, Segment, Shot, Transition, TransitionKind, SCHEMA_V1,
};
use vidsight_domain::media::StreamInfo;
use vidsight_domain::{Error, ErrorCode, Insights, MediaInfo, Result};
use vidsight_media::{MediaTools, SkipFrames};

/// Detector settings: the `[analysis]` section of the configuration, used as it is.
pub use vidsight_config::AnalysisConfig as AnalyzerSettings;

/// Keyframe thumbnails are this wide (narrower frames keep their width).
pub const THUMBNAIL_WIDTH: u32 = 160;

/// A keyframe image, JPEG-encoded, with its small thumbnail.
#[derive(Clone, Debug)]
pub struct Keyframe {
    /// File name, e.g. `shot-0003.jpg`; the insights document refers to it.
    pub name: String,
    pub jpeg: Vec<u8>,
    /// The same picture [`THUMBNAIL_WIDTH`] wide, named e.g. `shot-0003-small.jpg` (the
    /// shot's `thumbnail`), stored beside it.
    pub thumbnail: Image,
}

/// What one analysis produced.
#[derive(Clone, Debug)]
pub struct AnalysisOutput {
    pub insights: Insights,
    pub keyframes: Vec<Keyframe>,
    /// The storyboard's sprite sheets, named as in `insights.storyboard.sheets`.
    pub storyboard: Vec<Image>,
    /// Frames decoded.
    pub frames: u64,
    /// How they were decoded.
    pub decoding: Decoding,
}

/// How a video was decoded (see [`decode`] and [`source`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decoding {
    /// Which frames were left out.
    pub skipped: SkipFrames,
    /// Share of the stream's frames decoded.
    pub kept_share: f64,
    /// Processes that decoded parts of the video side by side (1: one process).
    pub parts: usize,
}

/// The analyzed frame size: the display size (rotation and pixel aspect applied), its
/// longer side at most `max_side` (a portrait video is measured on as many pixels as a
/// landscape one), both sides even.
pub fn analysis_frame_size(media: &MediaInfo, max_side: u32) -> (u32, u32) {
    let display_width = media.display_width.max(2);
    let display_height = media.display_height.max(2);
    // the longer side is bounded, the shorter one follows the aspect ratio
    let fit = |long: u32, short: u32| {
        let long_side = long.min(max_side).max(2) & !1;
        let short_side =
            ((long_side as f64 * short as f64 / long as f64).round() as u32).max(2) & !1;
        (long_side, short_side.max(2))
    };
    if display_height > display_width {
        let (height, width) = fit(display_height, display_width);
        (width, height)
    } else {
        fit(display_width, display_height)
    }
}

/// True when an analysis given `a` is the analysis given `b`: they agree on every fact of
/// a video that [`analyze`] reads (not its bit rates, its sound's format, how deep its
/// reordering goes, the names of its streams). An analysis started on a guess of the facts
/// (`MediaTools::guess`) is kept when the probe's agree with the guess.
pub fn read_alike(a: &MediaInfo, b: &MediaInfo) -> bool {
    type Read<'a> = (
        (&'a str, f64, f64),
        (u32, u32, u32, u32),
        (f64, bool, Option<u64>),
        (&'a str, bool, Option<&'a str>),
        Vec<(u32, &'a str, Option<&'a StreamInfo>)>,
    );
    fn read(media: &MediaInfo) -> Read<'_> {
        (
            (&media.container, media.duration, media.start_time),
            (
                media.width,
                media.height,
                media.display_width,
                media.display_height,
            ),
            (media.fps, media.variable_frame_rate, media.frame_count),
            (
                &media.video_codec,
                media.reorder_delay == Some(0),
                media.audio_codec.as_deref(),
            ),
            // the captions read the subtitle streams; the index, where the video stream is
            media
                .streams
                .iter()
                .map(|stream| {
                    let subtitle = stream.kind == "subtitle";
                    (
                        stream.index,
                        stream.kind.as_str(),
                        subtitle.then_some(stream),
                    )
                })
                .collect(),
        )
    }
    read(a) == read(b)
}

/// [`analyze`] for a file not probed yet: started at once on `guess` (what an MP4's index
/// says, `MediaTools::guess`) while `probe` runs, and kept where the probe's facts are read
/// alike ([`read_alike`]); otherwise dropped (its processes killed) and run again on the
/// probe's. The probe's facts and the analysis, which carries them. A probe that fails is
/// the error, whatever the analysis came to.
pub async fn analyze_beside_probe(
    tools: &MediaTools,
    path: &Path,
    guess: Option<MediaInfo>,
    probe: impl std::future::Future<Output = Result<MediaInfo>>,
    settings: &AnalyzerSettings,
    progress: &(dyn Fn(f64) + Send + Sync),
) -> Result<(MediaInfo, AnalysisOutput)> {
    let mut early = guess
        .as_ref()
        .map(|guess| Box::pin(analyze(tools, path, guess, settings, progress)));
    let mut early_output = None;
    tokio::pin!(probe);
    let media = match early.as_mut() {
        Some(analysis) => loop {
            tokio::select! {
                media = &mut probe => break media?,
                output = analysis.as_mut(), if early_output.is_none() => {
                    early_output = Some(output);
                }
            }
        },
        None => probe.await?,
    };
    let kept = guess
        .as_ref()
        .is_some_and(|guess| read_alike(guess, &media));
    let output = match (early, early_output) {
        (_, Some(output)) if kept => output,
        (Some(early), None) if kept => early.await,
        (early, _) => {
            if early.is_some() {
                tracing::debug!("the probe does not agree with the guess; analysing again");
            }
            // the guessed analysis's processes are killed before the next starts
            drop(early);
            analyze(tools, path, &media, settings, progress).await
        }
    };
    let mut output = output?;
    output.insights.media = media.clone();
    Ok((media, output))
}

/// Runs the analysis over a local file whose facts `media` were probed before.
/// `progress` receives 0.0–1.0 as decoding advances.
pub async fn analyze(
    tools: &MediaTools,
    path: &Path,
    media: &MediaInfo,
    settings: &AnalyzerSettings,
    progress: &(dyn Fn(f64) + Send + Sync),
) -> Result<AnalysisOutput> {
    let passes = async {
        // a video decoded in parts has its sound measured by a process of its own, started
        // now: beside the listing the parts wait for, and once whatever passes it takes
        let mut sound = (media.audio_codec.is_some() && part_count(media, settings) > 1)
            .then(|| {
                let (command, peak) = sound_command(tools, path, media, settings);
                source::Sound::start(command, peak)
            })
            .transpose()?;
        let (mut may_split, mut anchors) = (true, true);
        loop {
            let pass = run_pass(
                tools, path, media, settings, progress, may_split, anchors, &mut sound,
            );
            match pass.await? {
                Pass::Done(output) => return Ok(*output),
                Pass::SeamsBroken if may_split => {
                    tracing::warn!(
                        "the parts of the video did not meet; decoding it in one process"
                    );
                    may_split = false;
                }
                Pass::ReferencesMissing if anchors => {
                    tracing::warn!(
                        "P-frames refer to B-frames; decoding again without leaving B-frames out"
                    );
                    anchors = false;
                }
                Pass::SeamsBroken | Pass::ReferencesMissing => {
                    return Err(Error::internal("a pass asked to be run again as it was"))
                }
            }
        }
    };
    // subtitle tracks are read beside the pictures (one process; stopped with them)
    let work = async {
        let captions = async { Ok(captions::read_tracks(tools, path, media).await) };
        let (mut output, captions): (AnalysisOutput, _) = tokio::try_join!(passes, captions)?;
        output.insights.captions = captions;
        Ok(output)
    };
    match tokio::time::timeout(tools.analysis_timeout, work).await {
        Ok(result) => result,
        Err(_) => Err(Error::new(
            ErrorCode::MediaTimeout,
            format!(
                "analysis took longer than {} s and was stopped",
                tools.analysis_timeout.as_secs()
            ),
        )),
    }
}

/// What a part's reader measures of each picture as it reads it (see `source::Measure`):
/// everything the analysis needs of one frame alone, and the change into it from the frame
/// before in its part. Pictures arrive as YUV 4:2:0 at the analysis size and are measured at
/// half that size, in RGB (the `grid`), the change on every `step`th pixel of it (a grid
/// about 240 pixels wide, whatever the keyframe size).
#[derive(Clone)]
struct Measurer {
    width: usize,
    height: usize,
    grid_width: usize,
    grid_height: usize,
    step: usize,
    black_pixel_luma: u8,
    black_pixel_ratio: f64,
    rgb: Vec<u8>,
    current: HsvFrame,
    previous: HsvFrame,
    /// Pictures measured so far in this part.
    count: u64,
}

/// What [`Measurer`] found in one picture.
struct Measured {
    change: Change,
    /// Dark enough to count as a black frame.
    dark: bool,
    shots: shots::FrameMeasures,
}

/// The change into a picture.
enum Change {
    /// From the frame before in the same part.
    Measured(f64),
    /// The first frame of its part: its HSV grid, to be compared by the analysis with the
    /// part before's last frame (nothing, for the video's first).
    First(HsvFrame),
}

impl Measurer {
    fn new((width, height): (usize, usize), settings: &AnalyzerSettings) -> Self {
        let (grid_width, grid_height) = (width / 2, height / 2);
        Self {
            width,
            height,
            grid_width,
            grid_height,
            step: (grid_width / 240).max(1),
            black_pixel_luma: settings.black_pixel_luma,
            black_pixel_ratio: settings.black_pixel_ratio,
            rgb: Vec::with_capacity(grid_width * grid_height * 3),
            current: HsvFrame::default(),
            previous: HsvFrame::default(),
            count: 0,
        }
    }

    /// `yuv`'s half-size RGB picture, into `rgb`.
    fn rgb_of(&self, yuv: &[u8], rgb: &mut Vec<u8>) {
        frames::yuv420_to_half_rgb(yuv, self.width, self.height, rgb);
    }

    /// `yuv`'s HSV grid, into `hsv` (`rgb` a buffer for the way there).
    fn hsv_of(&self, yuv: &[u8], rgb: &mut Vec<u8>, hsv: &mut HsvFrame) {
        self.rgb_of(yuv, rgb);
        hsv.fill_from_rgb_sampled(rgb, self.grid_width, self.step);
    }
}

impl source::Measure for Measurer {
    type Of = Measured;

    fn measure(&mut self, yuv: &[u8]) -> Measured {
        let mut rgb = std::mem::take(&mut self.rgb);
        let mut current = std::mem::take(&mut self.current);
        self.hsv_of(yuv, &mut rgb, &mut current);
        let first = self.count == 0;
        let measured = Measured {
            change: if first {
                Change::First(current.clone())
            } else {
                Change::Measured(current.difference(&self.previous))
            },
            dark: dark_pixel_share(&rgb, self.black_pixel_luma, self.step)
                >= self.black_pixel_ratio,
            shots: shots::FrameMeasures::of(&rgb, self.grid_width, self.grid_height),
        };
        self.current = std::mem::replace(&mut self.previous, current);
        self.rgb = rgb;
        self.count += 1;
        measured
    }
}

/// How a pass ended: with the analysis; or, for a video decoded in parts, having found that
/// the parts do not meet (the pass is then run again in one process); or, decoding only
/// anchors, having found that P-frames refer to B-frames (run again keeping them).
enum Pass {
    Done(Box<AnalysisOutput>),
    SeamsBroken,
    ReferencesMissing,
}

/// The filters measuring the sound: silences, loudness (EBU R128) and its momentary values
/// (the true peak is measured on the samples they pass on, see `peak`).
fn audio_filters(settings: &AnalyzerSettings) -> String {
    format!(
        "silencedetect=noise={}dB:duration={},ebur128=peak=none:metadata=1,ametadata=mode=print:key=lavfi.r128.M",
        settings.silence_noise_db, settings.silence_min_seconds
    )
}

/// How many parts a video is decoded in before its listing says more (1: one process).
fn part_count(media: &MediaInfo, settings: &AnalyzerSettings) -> usize {
    let (width, height) = analysis_frame_size(media, settings.frame_width);
    source::part_count(
        media.duration,
        &media.container,
        decoder_count(settings),
        frames::yuv420_len(width as usize, height as usize),
        media.fps,
    )
}

/// The sound's own process, for a video decoded in parts, and the measuring of its true
/// peak.
fn sound_command(
    tools: &MediaTools,
    path: &Path,
    media: &MediaInfo,
    settings: &AnalyzerSettings,
) -> (tokio::process::Command, Option<peak::TruePeak>) {
    let mut command = tools.ffmpeg_command();
    command.args(["-hide_banner", "-nostdin", "-nostats", "-loglevel", "info"]);
    // on the file's clock, like the parts: without `-copyts` an ffmpeg that reads only the
    // sound counts from the sound's first sample; parts seeked to near a time have it
    // (see `source::parts_at`), and the rest count from the file's start as this does
    let filters = if source::seeking(&media.container) == source::Seeking::Near {
        command.arg("-copyts");
        format!(
            "asetpts=PTS-round({:.6}/TB),{}",
            media.start_time,
            audio_filters(settings)
        )
    } else {
        audio_filters(settings)
    };
    command
        .args(["-protocol_whitelist", "file", "-vn", "-i"])
        .arg(vidsight_media::input_url(path))
        .args(["-map", "0:a:0", "-af", &filters]);
    let peak = peak::output(&mut command);
    (command, peak)
}

#[allow(clippy::too_many_arguments)]
async fn run_pass(
    tools: &MediaTools,
    path: &Path,
    media: &MediaInfo,
    settings: &AnalyzerSettings,
    progress: &(dyn Fn(f64) + Send + Sync),
    may_split: bool,
    anchors: bool,
    sound: &mut Option<source::Sound>,
) -> Result<Pass> {
    let (width, height) = analysis_frame_size(media, settings.frame_width);
    let frame_bytes = frames::yuv420_len(width as usize, height as usize);
    let lowres = lowres_steps(media, (width, height));
    let decoders = decoder_count(settings);
    // decoding starts as if non-reference frames can be skipped, and the start of the
    // stream tells whether they can (see `decode`); a stream that reorders no frames has no
    // B-frames to skip and is decoded whole, unsampled; a short one is its own sample (two
    // seconds of anchors are enough frames to tell)
    let sampled = settings.skip_nonref_frames
        && media.reorder_delay != Some(0)
        && media.duration >= decode::MIN_SAMPLED_SECONDS;
    // parts short enough for the read-ahead even when every frame is decoded
    let count = if may_split {
        part_count(media, settings)
    } else {
        1
    };
    // a video decoded in parts waits for the keyframes they start at; one decoded whole
    // starts at once, and its first packets are listed meanwhile
    let (parts, mut packets) = if count > 1 {
        let (parts, packets) = lay_out(tools, path, media, sampled, count).await;
        (parts, Some(packets))
    } else {
        (vec![source::Part::WHOLE], None)
    };
    // the most skipping the codec may allow first (see `decode`)
    let mut skip = if !sampled {
        SkipFrames::None
    } else if settings.skip_b_frames && anchors && decode::anchors_may_do(&media.video_codec) {
        SkipFrames::Bidir
    } else {
        SkipFrames::NonRef
    };
    // a listing read before decoding (a video decoded in parts) may already show that
    // anchors alone, or every B-frame, would leave out too much: no process is started only
    // to be given up
    // (nothing rules out decoding every frame: this ends)
    while packets
        .as_ref()
        .is_some_and(|listed| decode::ruled_out(listed, skip, &media.video_codec))
    {
        skip = decode::fallback(skip, &media.video_codec);
    }
    // the parts were laid out for every frame decoded; where the listing shows how many
    // frames the skip leaves out, fewer, longer parts hold as many decoded frames (each
    // process started costs about 40 ms of CPU, and seeks)
    let share = packets
        .as_ref()
        .and_then(|listed| decode::kept_share(listed, skip, &media.video_codec));
    let parts = match share {
        Some(share) if parts.len() > 1 => {
            let wanted = source::part_count(
                media.duration,
                &media.container,
                decoders,
                frame_bytes,
                media.fps * share,
            );
            source::fewer_parts(parts, wanted, media.duration)
        }
        _ => parts,
    };
    let split = parts.len() > 1;
    let decoded_fps = media.fps.max(1.0) * share.unwrap_or(1.0);
    let read_ahead =
        source::whole_parts_ahead(&parts, media.duration, decoded_fps, decoders, frame_bytes)
            .unwrap_or_else(|| source::read_ahead_frames(decoders, frame_bytes));
    // the sound is measured in the one process, unless it has its own
    let inline_audio =
        (media.audio_codec.is_some() && sound.is_none()).then(|| audio_filters(settings));
    // what is measured of each picture beside the decoding (see `Measurer`)
    let measurer = Measurer::new((width as usize, height as usize), settings);
    let step = measurer.step;
    // the true peak of the sound measured in the one process, for its latest start
    let inline_peak: Arc<Mutex<Option<peak::TruePeak>>> = Arc::default();
    let start = |skip: SkipFrames| -> Result<source::FrameSource<Measurer>> {
        let (part_tools, input) = (tools.clone(), vidsight_media::input_url(path));
        let inline_audio = inline_audio.clone();
        let inline_peak = inline_peak.clone();
        // side by side, each process decodes on one thread (unless media.threads says)
        let threads = split.then_some(tools.threads.max(1));
        let start_time = media.start_time;
        let command = Box::new(move |part: &source::Part| {
            let mut command = decode_command(
                &part_tools,
                &input,
                (part, start_time),
                (width, height),
                lowres,
                skip,
                threads,
            );
            if let Some(filters) = &inline_audio {
                command.args(["-map", "0:a:0", "-af", filters]);
                let peak = peak::output(&mut command);
                *inline_peak
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = peak;
            }
            command
        }) as source::PartCommand;
        source::FrameSource::start(
            parts.clone(),
            command,
            decoders,
            (frame_bytes, read_ahead),
            if media.fps > 0.0 { media.fps } else { 25.0 },
            measurer.clone(),
        )
    };
    let mut source = start(skip)?;
    let plan = if sampled && skip != SkipFrames::None {
        // the first second, with the packet listing when it ran alongside
        let constant_rate = media.fps > 0.0 && !media.variable_frame_rate;
        let (mut early, packets) = match packets.take() {
            Some(packets) => (source.first_times(decode::EARLY_SECONDS).await, packets),
            // a constant frame rate says where every packet is: no listing to wait for (a
            // frame missing from the stream looks like one skipped, which only costs a
            // decode with less skipping)
            None if constant_rate => {
                let early = source.first_times(decode::EARLY_SECONDS).await;
                let packets = decode::frame_grid(&early, media.fps, decode::SAMPLE_SECONDS);
                (early, packets)
            }
            None => {
                let layout = lay_out(tools, path, media, sampled, count);
                let (early, (_, packets)) =
                    tokio::join!(source.first_times(decode::EARLY_SECONDS), layout);
                (early, packets)
            }
        };
        loop {
            let mut sample = vidsight_media::DecodeSample {
                decoded: early,
                packets: packets.clone(),
            };
            // frames already left out in runs: no need to wait for the rest of the sample
            if !decode::runs_seen(&sample, skip) {
                sample.decoded = source.first_times(decode::SAMPLE_SECONDS).await;
            }
            // leaving out B-frames that P-frames refer to makes the decoder complain
            let kept = decode::plan(&sample, skip)
                .filter(|_| !(skip == SkipFrames::Bidir && source.missing_references()));
            if let Some(plan) = kept {
                break plan;
            }
            // too much left out: start again, from the start, with less
            skip = decode::fallback(skip, &media.video_codec);
            drop(source);
            source = start(skip)?;
            if skip == SkipFrames::None {
                break decode::DecodePlan::FULL;
            }
            early = source.first_times(decode::EARLY_SECONDS).await;
        }
    } else {
        decode::DecodePlan::FULL
    };
    tracing::debug!(
        skip = plan.skip.as_str(),
        kept_share = plan.kept_share,
        "decoding chosen"
    );
    let duration = media.duration.max(0.001);

    // pictures arrive as YUV 4:2:0 (half the bytes of RGB, no conversion in ffmpeg's one
    // filtering thread), measured at half size (`grid`) by their part's reader; they are
    // converted whole only when kept (a keyframe, a storyboard tile)
    let (grid_width, grid_height) = (measurer.grid_width, measurer.grid_height);
    let mut tile_rgb = Vec::new();
    // the frame before (its picture given back once the next is measured): the
    // test-pattern check, and the change into the first frame of a part, are made on it
    let mut previous_picture: Option<Vec<u8>> = None;
    let mut previous_rgb = Vec::with_capacity(grid_width * grid_height * 3);
    let mut previous_score = 0.0f64;
    let mut previous_hsv = HsvFrame::default();
    // frames per second the analysis sees: fewer when non-reference frames are skipped
    let seen_fps = media.fps.max(1.0) * plan.kept_share;
    // the shortest shot, in frames seen: anchors come one to four frames apart (x264
    // chooses how many B-frames each time), so a short shot may be seen in as few as a
    // quarter of its frames
    let sparsest_fps = match plan.skip {
        SkipFrames::Bidir => media.fps.max(1.0) / (decode::MAX_ANCHOR_RUN + 1) as f64,
        _ => seen_fps,
    };
    let min_shot_frames = (settings.min_shot_seconds * sparsest_fps).round().max(1.0) as u64;
    let mut frame_index: u64 = 0;
    let mut black_flags: Vec<bool> = Vec::new();
    let mut bar_flags: Vec<bool> = Vec::new();
    let mut storyboard = StoryboardBuilder::new(
        tile_interval(media.duration),
        width,
        height,
        settings.keyframe_quality,
    );
    // frames left out (anchors one to four frames apart, `noref`'s one at a time): gradual
    // transitions are looked for on the stream's own frames, and where each frame seen is
    // counts (a false cut in a fade to black of the x265 corpus file was one of two halves
    // judged on every other frame)
    let stream_grid = (plan.skip != SkipFrames::None && media.fps > 0.0).then_some(media.fps);
    let mut builder = ShotBuilder::new(
        BoundarySettings {
            cut_threshold: settings.cut_threshold,
            adaptive_ratio: 3.0,
            min_content: 15.0,
            min_shot_frames,
            fps: if media.fps > 0.0 { seen_fps } else { 0.0 },
            gradual: true,
            stream_fps: stream_grid,
        },
        grid_width,
        grid_height,
    )
    .with_pictures(shots::Pictures::Yuv420 {
        width: width as usize,
        height: height as usize,
    });
    // keyframes (and their thumbnails) are encoded as soon as their shot is decided, so
    // memory holds JPEGs, not frames; past MAX_KEYFRAMES shots (a strobing or hostile video)
    // shots get no image
    let mut chosen: Vec<Option<KeyframeJpegs>> = Vec::new();
    // per shot: its keyframe's dominant colours and thumbnail (for scenes)
    let mut details: Vec<ShotDetails> = Vec::new();
    let mut last_reported = -1.0f64;
    let mut keep = |picked: Vec<shots::Picked>| -> Result<()> {
        for found in picked {
            while chosen.len() < found.shot {
                chosen.push(None);
                details.push((Vec::new(), None));
            }
            chosen.push(keyframe_jpeg(
                (found.frame.index, found.frame.rgb),
                chosen.len(),
                width,
                height,
                settings,
            )?);
            details.push((found.colors, Some(found.thumb)));
        }
        Ok(())
    };
    // decoding only anchors, cuts seen more than two frames after the frame decoded before
    // them are checked and put on their frame (see `refine`), while the pass goes on; where
    // every frame was decoded, frames that far apart were never there (a variable frame rate,
    // dropped frames)
    let fps = if media.fps > 0.0 { media.fps } else { 25.0 };
    let mut checks = (plan.skip == SkipFrames::Bidir).then(|| {
        // a stretch's frames are only measured, on the half-size grid: decoded as small as
        // that allows (720p MPEG-2: at a quarter, not a half; the TS minute's checks 0.57 →
        // 0.50 s of CPU, the same document)
        let lowres = lowres_steps(media, (grid_width as u32, grid_height as u32));
        let refiner = refiner(tools, path, media, (width, height), lowres, decoders, step);
        let most = REFINE_BASE + (media.duration.max(0.0) / 60.0 * REFINE_PER_MINUTE) as usize;
        refine::Checks::new(refiner, most)
    });
    // the pass's frame times (a cut's stretch is known as soon as it is decided), and its
    // keyframes' (where a stretch's decoding starts)
    let mut times: Vec<f64> = Vec::new();
    let mut keyframes: Vec<f64> = Vec::new();
    let mut transitions_seen = 0;
    let mut check_new_cuts = |transitions: &[Boundary],
                              (times, keyframes): (&[f64], &[f64]),
                              checks: &mut Option<refine::Checks>| {
        let Some(checks) = checks.as_mut() else {
            return;
        };
        checks.tick();
        for boundary in &transitions[transitions_seen..] {
            if let Boundary::Cut { frame, .. } = boundary {
                let (Some(before), Some(at)) = (
                    frame
                        .checked_sub(1)
                        .and_then(|index| times.get(index as usize)),
                    times.get(*frame as usize),
                ) else {
                    continue;
                };
                if (at - before) * fps > refine::MAX_ALIGNED_SPAN {
                    let keyframe = keyframes.partition_point(|key| key <= before);
                    checks.start(refine::Gap {
                        frame: *frame,
                        before: *before,
                        at: *at,
                        keyframe: keyframe.checked_sub(1).map(|index| keyframes[index]),
                    });
                }
            }
        }
        transitions_seen = transitions.len();
    };
    loop {
        let source::Decoded {
            picture: yuv,
            measured,
            time,
            key,
        } = match source.next().await {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(_) if source.seams_broken() => return Ok(Pass::SeamsBroken),
            Err(error) => return Err(error),
        };
        let score = match (&previous_picture, &measured.change) {
            (_, Change::Measured(score)) => *score,
            (None, Change::First(_)) => 0.0,
            // the first frame of a part after the first: against the last of the part before
            (Some(before), Change::First(hsv)) => {
                measurer.hsv_of(before, &mut previous_rgb, &mut previous_hsv);
                hsv.difference(&previous_hsv)
            }
        };
        black_flags.push(measured.dark);
        // the frame before is checked for a test pattern now that the change into this one is
        // known: only a frame that differs little from a neighbour can count, so moving
        // pictures skip the check
        let still = |score: f64| ((score as f32) as f64) < BARS_STILL_SCORE;
        if let Some(before) = &previous_picture {
            let candidate = (frame_index > 1 && still(previous_score)) || still(score);
            bar_flags.push(
                candidate && {
                    measurer.rgb_of(before, &mut previous_rgb);
                    is_test_pattern(&previous_rgb, grid_width, grid_height)
                },
            );
        }
        previous_score = score;
        if storyboard.wants(time) {
            frames::yuv420_to_rgb(&yuv, width as usize, height as usize, &mut tile_rgb);
            storyboard.push(time, &tile_rgb)?;
        }
        let position = match stream_grid {
            Some(fps) => time * fps,
            None => frame_index as f64,
        };
        times.push(time);
        if key {
            keyframes.push(time);
        }
        builder.push_at(frame_index, position, score, measured.shots, &yuv);
        check_new_cuts(builder.transitions(), (&times, &keyframes), &mut checks);
        keep(builder.take_picked())?;
        if let Some(before) = previous_picture.replace(yuv) {
            source.recycle(before);
        }
        frame_index += 1;

        let fraction = (time / duration).clamp(0.0, 1.0);
        if fraction - last_reported >= 0.01 {
            last_reported = fraction;
            progress(fraction);
        }
    }
    if let Some(last) = &previous_picture {
        let candidate = frame_index > 1 && ((previous_score as f32) as f64) < BARS_STILL_SCORE;
        bar_flags.push(
            candidate && {
                measurer.rgb_of(last, &mut previous_rgb);
                is_test_pattern(&previous_rgb, grid_width, grid_height)
            },
        );
    }
    let (mut found, picked) = builder.finish();
    check_new_cuts(&found.transitions, (&times, &keyframes), &mut checks);
    keep(picked)?;
    let mut findings = source.finish().await?;
    if plan.skip == SkipFrames::Bidir && findings.missing_references {
        return Ok(Pass::ReferencesMissing);
    }
    let peak = inline_peak
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .take();
    if let Some(peak) = peak {
        findings.true_peak = peak.finish().await;
    }
    if let Some(sound) = sound.take() {
        findings.absorb(sound.finish().await?);
    }
    if frame_index == 0 {
        return Err(Error::new(
            ErrorCode::UndecodableMedia,
            "no video frame could be decoded",
        ));
    }
    // the upload check catches most truncation; this catches the rest (e.g. a Matroska file
    // whose header promises more than its data holds)
    let decoded_until = findings.frame_times.last().copied().unwrap_or(0.0);
    let expected_frames = media.frame_count.unwrap_or(0);
    // when frames are skipped, how many arrive depends on how the rest of the stream is
    // built: only the time reached tells then
    // (an AVI's count is of its index's entries, which include the empty ones that stand
    // for frames not stored: ffmpeg's AVI of an H.264 stream with B-frames counts twice
    // the frames it holds)
    let counted = !source::is_avi(&media.container);
    let too_few = plan.skip == SkipFrames::None
        && counted
        && expected_frames > 10
        && frame_index * 10 < expected_frames * 9;
    if too_few || (media.duration > 5.0 && decoded_until < media.duration * 0.9 - 1.0) {
        return Err(Error::new(
            ErrorCode::TruncatedMedia,
            format!(
                "the video stops at {decoded_until:.2} s of {:.2} s: the file is truncated or damaged",
                media.duration
            ),
        ));
    }
    if findings.frame_times.len() as u64 != frame_index {
        tracing::warn!(
            frames = frame_index,
            timestamps = findings.frame_times.len(),
            "frame and timestamp counts differ; missing times are extrapolated"
        );
    }
    progress(1.0);

    let total_frames = frame_index;
    let time_of = |index: u64| -> f64 {
        findings
            .frame_times
            .get(index as usize)
            .copied()
            .unwrap_or_else(|| {
                let last = findings.frame_times.last().copied().unwrap_or(0.0);
                last + (index as f64 + 1.0 - findings.frame_times.len() as f64) / fps
            })
    };
    let last_frame_end = time_of(total_frames - 1) + 1.0 / fps;
    let end_of_video = video_end(media.duration, last_frame_end);

    let placed = match checks {
        Some(checks) => {
            let placed = checks.finish().await;
            tracing::debug!(placed = placed.len(), "cuts between anchors placed");
            placed
        }
        None => HashMap::new(),
    };
    // a cut whose change turned out spread over the frames between two anchors (the end of
    // a dissolve, fast motion) is none: its two shots are one (the later one's keyframe goes)
    let not_a_cut = |frame: &u64| placed.get(frame) == Some(&refine::Placed::NotACut);
    for position in (0..found.boundaries.len()).rev() {
        if not_a_cut(&found.boundaries[position]) {
            found.boundaries.remove(position);
            // keyframes and details are kept for shots up to the last one picked
            if position + 1 < chosen.len() {
                chosen.remove(position + 1);
            }
            if position + 1 < details.len() {
                details.remove(position + 1);
            }
        }
    }
    found
        .transitions
        .retain(|boundary| !matches!(boundary, Boundary::Cut { frame, .. } if not_a_cut(frame)));
    let boundary_time = |frame: u64| match placed.get(&frame) {
        Some(refine::Placed::At(time)) => *time,
        _ => time_of(frame),
    };
    let mut starts = vec![0u64];
    starts.extend(&found.boundaries);
    let mut shots = Vec::with_capacity(starts.len());
    let mut keyframes = Vec::with_capacity(starts.len());
    let mut thumbs = Vec::with_capacity(starts.len());
    for (position, start_frame) in starts.iter().enumerate() {
        let start = if position == 0 {
            0.0
        } else {
            boundary_time(*start_frame)
        };
        let end_frame = starts.get(position + 1).copied().unwrap_or(total_frames);
        let end = if position + 1 < starts.len() {
            boundary_time(end_frame)
        } else {
            end_of_video
        };
        let name = format!("shot-{:04}.jpg", position + 1);
        let small_name = format!("shot-{:04}-small.jpg", position + 1);
        let (keyframe, thumbnail) = match chosen.get_mut(position).and_then(Option::take) {
            Some((jpeg, small)) => {
                keyframes.push(Keyframe {
                    name: name.clone(),
                    jpeg,
                    thumbnail: Image {
                        name: small_name.clone(),
                        jpeg: small,
                    },
                });
                (Some(name), Some(small_name))
            }
            None => (None, None),
        };
        let (colors, thumb) = details
            .get_mut(position)
            .map(std::mem::take)
            .unwrap_or_default();
        thumbs.push(thumb);
        let range = *start_frame as usize..(end_frame as usize).min(found.lumas.len());
        let frames = range.len().max(1) as f64;
        let brightness = found.lumas[range.clone()]
            .iter()
            .map(|v| *v as f64)
            .sum::<f64>()
            / frames
            / 255.0;
        // the first frame's score is the change into the shot, not motion within it
        let inner = (range.start + 1).min(range.end)..range.end;
        // a score spans more than one frame where frames were skipped: per frame
        let motion = inner
            .clone()
            .map(|index| {
                let span = (time_of(index as u64) - time_of(index as u64 - 1)) * fps;
                found.scores[index] as f64 / span.round().max(1.0)
            })
            .sum::<f64>()
            / inner.len().max(1) as f64
            / 100.0;
        shots.push(Shot {
            index: position as u32,
            start: round_time(start),
            end: round_time(end),
            keyframe,
            thumbnail,
            brightness: Some(round3(brightness)),
            motion: Some(round3(motion.min(1.0))),
            colors: colors
                .into_iter()
                .map(|(hex, share)| vidsight_domain::insights::ShotColor { hex, share })
                .collect(),
        });
    }
    let transitions = found
        .transitions
        .iter()
        .map(|boundary| match boundary {
            Boundary::Cut { frame, confidence } => {
                let time = round_time(boundary_time(*frame));
                Transition {
                    kind: TransitionKind::Cut,
                    start: time,
                    end: time,
                    confidence: *confidence,
                }
            }
            Boundary::Gradual {
                kind,
                start,
                end,
                confidence,
            } => Transition {
                kind: match kind {
                    GradualKind::Dissolve => TransitionKind::Dissolve,
                    GradualKind::FadeIn => TransitionKind::FadeIn,
                    GradualKind::FadeOut => TransitionKind::FadeOut,
                },
                start: round_time(time_of(*start)),
                end: round_time(if *end + 1 < total_frames {
                    time_of(*end + 1)
                } else {
                    end_of_video
                }),
                confidence: *confidence,
            },
        })
        .collect();
    // flat pictures (black, a colour card) hash alike whatever they are: left out
    let fingerprint = thumbs
        .iter()
        .flatten()
        .filter(|thumb| thumb.std() >= 8.0)
        .map(fingerprint::dhash)
        .collect();
    let scenes = shots::group_scenes(&thumbs)
        .into_iter()
        .enumerate()
        .map(|(index, (first, last))| Scene {
            index: index as u32,
            start: shots[first].start,
            end: shots[last].end,
            first_shot: first as u32,
            last_shot: last as u32,
        })
        .collect();

    // Black segments: runs of black frames at least `black_min_seconds` long.
    let mut black = Vec::new();
    let mut run_start: Option<u64> = None;
    for index in 0..=total_frames {
        let is_black = black_flags.get(index as usize).copied().unwrap_or(false);
        match (is_black, run_start) {
            (true, None) => run_start = Some(index),
            (false, Some(first)) => {
                let start = if first == 0 { 0.0 } else { time_of(first) };
                let end = if index == total_frames {
                    end_of_video
                } else {
                    time_of(index)
                };
                if end - start >= settings.black_min_seconds - 1e-6 {
                    black.push(Segment {
                        start: round_time(start),
                        end: round_time(end),
                    });
                }
                run_start = None;
            }
            _ => {}
        }
    }

    // Frozen picture: at least FREEZE_SECONDS of frames that do not change, and are not black.
    let mut freeze = Vec::new();
    let mut run_start: Option<u64> = None;
    for index in 1..=total_frames {
        let still = (index as usize) < found.scores.len()
            && (found.scores[index as usize] as f64) < FREEZE_SCORE
            && !black_flags.get(index as usize).copied().unwrap_or(false);
        match (still, run_start) {
            (true, None) => run_start = Some(index - 1),
            (false, Some(first)) => {
                let start = if first == 0 { 0.0 } else { time_of(first) };
                let end = if index < total_frames {
                    time_of(index)
                } else {
                    end_of_video
                };
                if end - start >= FREEZE_SECONDS {
                    freeze.push(Segment {
                        start: round_time(start),
                        end: round_time(end),
                    });
                }
                run_start = None;
            }
            _ => {}
        }
    }

    // Colour bars and test patterns that stand still: each frame differs from one of its
    // neighbours by less than BARS_STILL_SCORE (an animated pattern is content)
    let still = |index: usize| {
        found
            .scores
            .get(index)
            .is_some_and(|score| (*score as f64) < BARS_STILL_SCORE)
    };
    let bars = flagged_segments(
        total_frames,
        |index| {
            let index = index as usize;
            bar_flags.get(index).copied().unwrap_or(false)
                && ((index > 0 && still(index)) || still(index + 1))
        },
        time_of,
        end_of_video,
        BARS_MIN_SECONDS,
    );

    // The storyboard, its times to the microsecond like every other.
    let (storyboard, sheets) = match storyboard.finish(end_of_video)? {
        Some((mut board, sheets)) => {
            board
                .times
                .iter_mut()
                .for_each(|time| *time = round_time(*time));
            board.end = round_time(board.end);
            (Some(board), sheets)
        }
        None => (None, Vec::new()),
    };

    // Silent segments, closed at the end of the video when the silence runs to it.
    let mut silence = Vec::new();
    let mut open: Option<f64> = None;
    for event in &findings.silence_events {
        match event {
            LogEvent::SilenceStart(time) => open = Some(time.max(0.0)),
            LogEvent::SilenceEnd(time) => {
                if let Some(start) = open.take() {
                    silence.push(Segment {
                        start: round_time(start),
                        end: round_time(time.min(end_of_video)),
                    });
                }
            }
            _ => {}
        }
    }
    if let Some(start) = open {
        if end_of_video - start >= settings.silence_min_seconds {
            silence.push(Segment {
                start: round_time(start),
                end: round_time(end_of_video),
            });
        }
    }

    let loudness = match (
        media.audio_codec.is_some(),
        parse_loudness_summary(&findings.loudness_lines),
        findings.true_peak,
    ) {
        (true, Some((integrated, range)), Some(peak)) => Some(Loudness {
            integrated_lufs: integrated,
            lra: range,
            true_peak_dbtp: peak::dbtp(peak),
            curve: logparse::loudness_curve(&findings.momentary, end_of_video),
        }),
        (true, Some(_), None) => {
            tracing::warn!("the sound's loudness was measured but not its true peak: none given");
            None
        }
        _ => None,
    };

    let ocr = ocr::read_text(tools, &settings.ocr_languages, &shots, |position| {
        let name = shots[position].keyframe.as_deref()?;
        keyframes
            .iter()
            .find(|keyframe| keyframe.name == name)
            .map(|keyframe| keyframe.jpeg.clone())
    })
    .await;

    Ok(Pass::Done(Box::new(AnalysisOutput {
        insights: Insights {
            schema: SCHEMA_V1.to_owned(),
            media: media.clone(),
            shots,
            transitions,
            scenes,
            fingerprint,
            ocr,
            black,
            freeze,
            bars,
            silence,
            loudness,
            // read beside the passes (see `analyze`)
            captions: Vec::new(),
            storyboard,
            // what analysis providers add comes later, from the worker
            summary: None,
            chapters: Vec::new(),
            transcript: Vec::new(),
            labels: Vec::new(),
            text: Vec::new(),
            topics: None,
            moderation: Vec::new(),
            custom: None,
            providers: Vec::new(),
        },
        keyframes,
        storyboard: sheets,
        frames: total_frames,
        decoding: Decoding {
            skipped: plan.skip,
            kept_share: plan.kept_share,
            parts: parts.len(),
        },
    })))
}

type ShotDetails = (Vec<(String, f64)>, Option<Thumb>);

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// The most cuts between anchors checked: this many, plus `REFINE_PER_MINUTE` for each
/// minute of video (a count, not a time, so that what is found does not depend on the
/// machine's load; the later ones keep the pass's answer).
const REFINE_BASE: usize = 32;
const REFINE_PER_MINUTE: f64 = 16.0;
/// A picture that changes by less than this (mean HSV difference) from frame to frame is
/// still; one still for `FREEZE_SECONDS` is a freeze.
const FREEZE_SCORE: f64 = 0.25;
const FREEZE_SECONDS: f64 = 2.0;

/// A test pattern is reported when it stands still (frame differences below this, a tenth
/// of what moving test sources score) for at least `BARS_MIN_SECONDS`.
const BARS_STILL_SCORE: f64 = 1.0;
const BARS_MIN_SECONDS: f64 = 1.0;

/// Where the video ends: its duration, or the end of its last frame where that runs later
/// (by up to a second: a header that under-reports). A last frame that ends within 10 µs
/// of the duration ends on it: frame times summed from a part's start (in parts, a
/// keyframe's time printed to six decimals) land a microsecond or two past, and the
/// loudness curve, a value a second, had one more value than the seconds of a 20 s video.
fn video_end(duration: f64, last_frame_end: f64) -> f64 {
    let end = duration.max(last_frame_end.min(duration + 1.0));
    if end - duration < 1e-5 {
        duration
    } else {
        end
    }
}

/// Times are reported to the microsecond.
fn round_time(seconds: f64) -> f64 {
    (seconds * 1_000_000.0).round() / 1_000_000.0
}

/// Fills `buffer` with the next frame; false at a clean end of stream.
/// Shots beyond this many get no keyframe image.
pub const MAX_KEYFRAMES: usize = 5000;

/// A keyframe's JPEG at the analysis size, and its thumbnail's.
type KeyframeJpegs = (Vec<u8>, Vec<u8>);

fn keyframe_jpeg(
    (_, pixels): (u64, Vec<u8>),
    already: usize,
    width: u32,
    height: u32,
    settings: &AnalyzerSettings,
) -> Result<Option<KeyframeJpegs>> {
    if already >= MAX_KEYFRAMES {
        return Ok(None);
    }
    let large = encode_jpeg(&pixels, width, height, settings.keyframe_quality)?;
    let (small_width, small_height) = scaled_size(width, height, THUMBNAIL_WIDTH);
    let small_pixels = resize_area(
        &pixels,
        width as usize,
        height as usize,
        small_width as usize,
        small_height as usize,
    );
    let small = encode_jpeg(
        &small_pixels,
        small_width,
        small_height,
        settings.keyframe_quality,
    )?;
    Ok(Some((large, small)))
}

/// Decoding processes run side by side: `analysis.decoders`, or one per core (at most 4).
fn decoder_count(settings: &AnalyzerSettings) -> usize {
    match settings.decoders {
        0 => std::thread::available_parallelism()
            .map(|cores| cores.get())
            .unwrap_or(1)
            .min(4),
        count => count as usize,
    }
}

/// Decoders that can decode a picture at a half, a quarter or an eighth of its size
/// (ffmpeg's `-lowres`: the inverse transform and the motion compensation done at that
/// size), for a fraction of what decoding it whole and scaling it down costs (a 720p minute
/// of MPEG-2 on one thread: 1.9 s against 3.7 s). H.264, HEVC, VP9 and AV1 cannot.
const LOWRES_CODECS: &[&str] = &[
    "mpeg1video",
    "mpeg2video",
    "mpeg4",
    "mjpeg",
    "flv1",
    "h263",
    "h263p",
    "msmpeg4v1",
    "msmpeg4v2",
    "msmpeg4v3",
    "wmv1",
    "wmv2",
    "dvvideo",
];

/// How many times (0–3) the decoder may halve `media`'s pictures and still give at least
/// `size` (the analysis frame size) on each side: nothing is measured from fewer pixels than
/// the frame size asks for (an anamorphic picture, stretched to be shown, is not halved
/// across its stretched side).
fn lowres_steps(media: &MediaInfo, (width, height): (u32, u32)) -> u8 {
    if !LOWRES_CODECS.contains(&media.video_codec.as_str()) {
        return 0;
    }
    let coded = (media.width.max(media.height), media.width.min(media.height));
    let wanted = (width.max(height), width.min(height));
    (1..=3u8)
        .rev()
        .find(|steps| {
            // as the decoder rounds: up
            let halved = |side: u32| side.div_ceil(1 << steps);
            halved(coded.0) >= wanted.0 && halved(coded.1) >= wanted.1
        })
        .unwrap_or(0)
}

/// An ffmpeg that decodes `part` of `input`, scaled to `size` (decoded `lowres` times
/// halved first, see [`lowres_steps`]), as YUV 4:2:0 pictures on stdout and showinfo
/// timestamps (on the part's own clock) on stderr.
fn decode_command(
    tools: &MediaTools,
    input: &str,
    (part, start_time): (&source::Part, f64),
    size: (u32, u32),
    lowres: u8,
    skip: SkipFrames,
    threads: Option<u32>,
) -> tokio::process::Command {
    let mut command = tools.ffmpeg_command();
    command.args(["-hide_banner", "-nostdin", "-nostats", "-loglevel", "info"]);
    command.args(ONE_FILTER_THREAD);
    let frames = part_input(
        &mut command,
        tools,
        input,
        (part, start_time),
        lowres,
        skip,
        threads,
    );
    // showinfo reports each frame's timestamp, and measures the whole picture it is given:
    // it gets a 2×2 corner (crop only moves pointers), the pictures go out untouched
    command
        .arg("-filter_complex")
        .arg(format!(
            "[0:v:0]{frames}{},split[frames][times];[times]crop=2:2:0:0,showinfo=checksum=0,nullsink",
            picture_filters(size)
        ))
        .args(["-map", "[frames]", "-fps_mode", "passthrough"])
        .args(["-f", "rawvideo", "pipe:1"]);
    command
}

/// How the pass's cuts between anchors are checked (see `refine`): their stretches decoded
/// as the pass decodes (`size`, `lowres` halvings), measured as it measures (every `step`th
/// pixel of the half-size grid).
fn refiner(
    tools: &MediaTools,
    path: &Path,
    media: &MediaInfo,
    (width, height): (u32, u32),
    lowres: u8,
    decoders: usize,
    step: usize,
) -> refine::Refiner {
    let (tools, input, start_time) = (
        tools.clone(),
        vidsight_media::input_url(path),
        media.start_time,
    );
    let fps = if media.fps > 0.0 { media.fps } else { 25.0 };
    let seeking = source::seeking(&media.container);
    refine::Refiner {
        command: Box::new(
            move |spans: &[refine::Span], skip: SkipFrames, brief: bool| {
                let spans = (spans, start_time);
                let decoding = (lowres, skip, brief);
                stretches_command(&tools, &input, spans, (width, height), decoding)
            },
        ),
        // where nothing refers to B-frames, leaving out the frames nothing refers to leaves
        // out every B-frame, several in a row: every frame at once
        first_skip: if decode::UNREFERENCED_B_FRAMES.contains(&media.video_codec.as_str()) {
            SkipFrames::None
        } else {
            SkipFrames::NonRef
        },
        lead: match seeking {
            source::Seeking::Near => source::NEAR_SEEK_LEAD,
            _ => 0.0,
        },
        close_lead: match seeking {
            source::Seeking::Near if source::is_avi(&media.container) => -refine::AVI_PAST / fps,
            source::Seeking::Near => refine::CLOSE_LEAD,
            _ => 0.0,
        },
        decoders,
        frame_bytes: frames::yuv420_len(width as usize, height as usize),
        fps,
        measure: Box::new(move |yuv: &[u8]| {
            let mut rgb = Vec::new();
            frames::yuv420_to_half_rgb(yuv, width as usize, height as usize, &mut rgb);
            let mut signature = HsvFrame::default();
            signature.fill_from_rgb_sampled(&rgb, width as usize / 2, step);
            signature
        }),
    }
}

/// One ffmpeg that decodes several short spans of `input` (the stretches of cuts checked
/// between anchors, see `refine`), each an input of its own decoded as [`decode_command`]
/// decodes a part, only the frames in its windows kept: the pictures of the first span, then
/// of the second, … on stdout; on stderr each span's timestamps from its own showinfo, named
/// `showinfo@sN` for the span's index. A process costs about as much to start (libraries
/// loaded, the file opened) as decoding a stretch: 23 stretches of an MPEG-TS took 2.4 s one
/// process each, 0.9 s in one. The spans must agree on seeking near a time or onto a
/// keyframe (`-copyts` is global).
fn stretches_command(
    tools: &MediaTools,
    input: &str,
    (spans, start_time): (&[refine::Span], f64),
    size: (u32, u32),
    (lowres, skip, brief): (u8, SkipFrames, bool),
) -> tokio::process::Command {
    let mut command = tools.ffmpeg_command();
    command.args(["-hide_banner", "-nostdin", "-nostats", "-loglevel", "info"]);
    command.args(ONE_FILTER_THREAD);
    let mut graph = Vec::with_capacity(spans.len() + 1);
    for (index, span) in spans.iter().enumerate() {
        if brief {
            // a tenth of a second of the stream probed, not five (see `refine`)
            command.args(["-analyzeduration", "100000"]);
        }
        // one thread each: the stretches are decoded one after the other, beside the pass
        let part = (&span.part, start_time);
        let frames = part_input(&mut command, tools, input, part, lowres, skip, Some(1));
        // several stretches after one keyframe: only their frames go on
        let keep = if span.keep.len() > 1 {
            let windows: Vec<String> = span
                .keep
                .iter()
                .map(|(from, to)| format!("between(t,{from:.6},{to:.6})"))
                .collect();
            format!("select='{}',", windows.join("+"))
        } else {
            String::new()
        };
        graph.push(format!(
            "[{index}:v:0]{frames}{keep}{},split[f{index}][t{index}];\
             [t{index}]crop=2:2:0:0,showinfo@s{index}=checksum=0,nullsink",
            picture_filters(size)
        ));
    }
    let labels: String = (0..spans.len())
        .map(|index| format!("[f{index}]"))
        .collect();
    graph.push(format!("{labels}concat=n={}:v=1:a=0[frames]", spans.len()));
    command
        .arg("-filter_complex")
        .arg(graph.join(";"))
        .args(["-map", "[frames]", "-fps_mode", "passthrough"])
        .args(["-f", "rawvideo", "pipe:1"]);
    command
}

/// The filter graph on the thread that runs it: by default ffmpeg slices each scaled picture
/// over as many threads as there are cores, and the pass's processes already keep every
/// core busy (a part's process on the 720p H.264 minute: 1.10 → 1.01 s of CPU, the same
/// pictures).
const ONE_FILTER_THREAD: [&str; 2] = ["-filter_complex_threads", "1"];

/// The pictures as the analysis measures them: `size`, square pixels, YUV 4:2:0.
fn picture_filters((width, height): (u32, u32)) -> String {
    format!("scale={width}:{height}:flags=area,setsar=1,format=yuv420p")
}

/// Adds `part` of `input` as the command's next input: the decoder's options (each applies
/// to the input it precedes), then where decoding starts. Returns the filters that put its
/// frames on the part's own clock and end them where the part ends.
fn part_input(
    command: &mut tokio::process::Command,
    tools: &MediaTools,
    input: &str,
    (part, start_time): (&source::Part, f64),
    lowres: u8,
    skip: SkipFrames,
    threads: Option<u32>,
) -> String {
    command.args(tools.decoder_input_options(skip, threads));
    if lowres > 0 {
        command.args(["-lowres", &lowres.to_string()]);
    }
    let seek = part.start - part.lead;
    let clock = if part.lead != 0.0 {
        // seeking near a time, not onto a keyframe (before it, or just after it in an index
        // whose times run late): the stream's own timestamps
        // (`-copyts`), put on the part's clock below, whatever ffmpeg would shift them by
        // (it counts from the video's first frame when it does not seek, from the file's
        // start when it does)
        command.arg("-copyts");
        format!("setpts=PTS-round({:.6}/TB),", start_time + part.start)
    } else {
        String::new()
    };
    if seek > 0.0 {
        // lands on the part's keyframe, or `lead` before it; frames before it (a seek may
        // bring some) are trimmed below
        command.args(["-ss", &format!("{seek:.6}"), "-noaccurate_seek"]);
    }
    command.arg("-i").arg(input);
    // times in the part's own clock from here; half a millisecond of slack for timestamps
    // printed to the microsecond
    let trim = match part.end {
        Some(end) => format!("trim=start=-0.0005:end={:.6},", end - part.start - 0.0005),
        None if part.start > 0.0 || part.lead > 0.0 => "trim=start=-0.0005,".to_owned(),
        None => String::new(),
    };
    format!("{clock}{trim}")
}

/// Reads how the stream is laid out (an MP4's index, or one ffprobe run; nothing decoded):
/// the `count` parts a long video is cut into at keyframes (see [`source`]; one part when it
/// is short, in a container without a reliable index, or when the listing fails), and, when
/// `sampled`, the packet times of its first seconds.
async fn lay_out(
    tools: &MediaTools,
    path: &Path,
    media: &MediaInfo,
    sampled: bool,
    count: usize,
) -> (Vec<source::Part>, Vec<f64>) {
    if count <= 1 && !sampled {
        return (vec![source::Part::WHOLE], Vec::new());
    }
    let seeking = source::seeking(&media.container);
    let targets = if count > 1 {
        source::split_targets(media.duration, count)
    } else {
        Vec::new()
    };
    // a second more than the decoded frames are compared over: the listing stops by read
    // order, and frames shown before the end may be stored after it
    let seconds = if sampled {
        decode::SAMPLE_SECONDS + 1.0
    } else {
        0.0
    };
    let exact = seeking != source::Seeking::Near;
    match tools
        .stream_layout(path, media, seconds, &targets, exact)
        .await
    {
        Ok(layout) => {
            let parts = if count > 1 {
                let lead = if exact { 0.0 } else { source::NEAR_SEEK_LEAD };
                source::parts_at(&layout.keyframes, lead)
            } else {
                vec![source::Part::WHOLE]
            };
            tracing::debug!(parts = parts.len(), "decoding in parts");
            (parts, layout.packets)
        }
        Err(error) => {
            tracing::debug!(%error, "listing the stream's packets failed; one process");
            (vec![source::Part::WHOLE], Vec::new())
        }
    }
}

/// Runs of frames for which `flagged` holds, at least `min_seconds` long, as segments from
/// the first frame (0 for the first frame of the video) to the first frame after (the end of
/// the video after the last).
fn flagged_segments(
    total_frames: u64,
    flagged: impl Fn(u64) -> bool,
    time_of: impl Fn(u64) -> f64,
    end_of_video: f64,
    min_seconds: f64,
) -> Vec<Segment> {
    let mut segments = Vec::new();
    let mut run_start: Option<u64> = None;
    for index in 0..=total_frames {
        let on = index < total_frames && flagged(index);
        match (on, run_start) {
            (true, None) => run_start = Some(index),
            (false, Some(first)) => {
                let start = if first == 0 { 0.0 } else { time_of(first) };
                let end = if index == total_frames {
                    end_of_video
                } else {
                    time_of(index)
                };
                if end - start >= min_seconds - 1e-6 {
                    segments.push(Segment {
                        start: round_time(start),
                        end: round_time(end),
                    });
                }
                run_start = None;
            }
            _ => {}
        }
    }
    segments
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::jpeg_size;

    fn settings() -> AnalyzerSettings {
        AnalyzerSettings {
            cut_threshold: 27.0,
            min_shot_seconds: 0.4,
            frame_width: 480,
            black_pixel_ratio: 0.98,
            black_pixel_luma: 32,
            skip_nonref_frames: true,
            skip_b_frames: true,
            decoders: 0,
            black_min_seconds: 0.1,
            silence_noise_db: -50.0,
            silence_min_seconds: 0.5,
            keyframe_quality: 85,
            ocr_languages: String::new(),
        }
    }

    async fn analyse_clip(path: &Path) -> AnalysisOutput {
        let tools = MediaTools::default();
        let media = tools.probe(path).await.expect("the clip probes");
        analyze(&tools, path, &media, &settings(), &|_| {})
            .await
            .expect("the clip is analysed")
    }

    /// Four moving pictures joined by cuts, 12 s, H.264 with B-frames in a pyramid (x264's
    /// default, as most uploads are): every other frame is one nothing refers to.
    fn pyramid_clip(dir: &Path, b_pyramid: &str) -> std::path::PathBuf {
        clip_with(dir, 3, &format!("b-pyramid={b_pyramid}"))
    }

    /// The same, with `b_frames` B-frames and more x264 options.
    fn clip_with(dir: &Path, b_frames: u32, x264: &str) -> std::path::PathBuf {
        let path = dir.join(format!("{b_frames}-{}.mp4", x264.replace([':', '='], "-")));
        testing::ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=3[a];\
             mandelbrot=size=320x240:rate=25,trim=duration=3[b];\
             testsrc=size=320x240:rate=25:duration=3,hue=h=90,vflip[c];\
             cellauto=size=320x240:rate=25:rule=110:seed=7,trim=duration=3[d];\
             [a][b][c][d]concat=n=4:v=1:a=0,format=yuv420p",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-bf",
            &b_frames.to_string(),
            "-x264-params",
            x264,
            path.to_str().unwrap(),
        ]);
        path
    }

    fn cut_times(output: &AnalysisOutput) -> Vec<f64> {
        output
            .insights
            .transitions
            .iter()
            .filter(|t| t.kind == TransitionKind::Cut)
            .map(|t| t.start)
            .collect()
    }

    #[tokio::test]
    async fn skipping_b_frames_keeps_every_cut_within_a_frame() {
        let dir = tempfile::tempdir().unwrap();
        let clip = pyramid_clip(dir.path(), "normal");
        let tools = MediaTools::default();
        let media = tools.probe(&clip).await.unwrap();
        let skipping = analyse_clip(&clip).await;
        let plan = skipping.decoding;
        assert_eq!(
            plan.skipped,
            SkipFrames::Bidir,
            "x264's B-frames are sampled as skippable: {plan:?}"
        );
        assert!(plan.kept_share < 0.6, "{plan:?}");

        let mut every = settings();
        every.skip_nonref_frames = false;
        let whole = analyze(&tools, &clip, &media, &every, &|_| {})
            .await
            .unwrap();
        let (fast, full) = (cut_times(&skipping), cut_times(&whole));
        assert_eq!(
            full.len(),
            3,
            "the three cuts, decoding every frame: {full:?}"
        );
        assert_eq!(fast.len(), full.len(), "{fast:?} vs {full:?}");
        for (fast, full) in fast.iter().zip(&full) {
            assert!((fast - full).abs() <= 0.04 + 1e-3, "{fast} vs {full}");
        }
        for (expected, found) in [3.0, 6.0, 9.0].iter().zip(&fast) {
            assert!(
                (expected - found).abs() <= 0.04 + 1e-3,
                "{found} is not {expected}"
            );
        }
        // the same shots, keyframes and storyboard either way
        assert_eq!(skipping.insights.shots.len(), whole.insights.shots.len());
        assert_eq!(skipping.keyframes.len(), whole.keyframes.len());
        assert!(skipping.insights.storyboard.is_some());
    }

    /// An analysis started on the index's guess is the analysis of the probe's facts: kept
    /// where they are read alike, run again where they are not (a guess wrong about the
    /// size the picture is shown at), and a probe that fails is the error. The facts
    /// `read_alike` does not compare change nothing in the analysis.
    #[tokio::test]
    async fn an_analysis_on_a_guess_is_the_one_on_the_probe() {
        let dir = tempfile::tempdir().unwrap();
        let clip = pyramid_clip(dir.path(), "normal");
        let tools = MediaTools::default();
        let media = tools.probe(&clip).await.unwrap();
        let expected = analyze(&tools, &clip, &media, &settings(), &|_| {})
            .await
            .unwrap();
        let document = |output: &AnalysisOutput| serde_json::to_string(&output.insights).unwrap();
        let guess = tools.guess(&clip).await.expect("an x264 MP4 is guessed");
        assert!(read_alike(&guess, &media));
        let mut wrong = guess.clone();
        wrong.display_width /= 2;
        assert!(!read_alike(&wrong, &media));
        for guess in [Some(guess.clone()), Some(wrong), None] {
            let probe = tools.probe(&clip);
            let (probed, output) =
                analyze_beside_probe(&tools, &clip, guess, probe, &settings(), &|_| {})
                    .await
                    .unwrap();
            assert_eq!(probed, media);
            assert_eq!(document(&output), document(&expected));
        }
        let refused = async { Err(Error::new(ErrorCode::UnsupportedMediaType, "not a video")) };
        let failed =
            analyze_beside_probe(&tools, &clip, Some(guess), refused, &settings(), &|_| {}).await;
        assert_eq!(failed.unwrap_err().code, ErrorCode::UnsupportedMediaType);

        // what is not compared is not read
        let mut other = media.clone();
        other.bit_rate = Some(1);
        other.video_bit_rate = Some(2);
        other.audio_bit_rate = Some(3);
        other.audio_channels = Some(7);
        other.audio_sample_rate = Some(8000);
        other.display_aspect = "1:9".into();
        other.sample_aspect = "3:1".into();
        other.rotation = 270;
        other.reorder_delay = Some(media.reorder_delay.unwrap_or(1) + 5);
        for stream in &mut other.streams {
            stream.language = Some("xyz".into());
            stream.title = Some("another".into());
        }
        assert!(read_alike(&other, &media));
        let mut output = analyze(&tools, &clip, &other, &settings(), &|_| {})
            .await
            .unwrap();
        output.insights.media = media.clone();
        assert_eq!(document(&output), document(&expected));
    }

    #[test]
    fn a_video_ends_on_its_duration_unless_its_frames_run_on() {
        // 20 s at 30 fps in parts: the last frame's end summed from the part's start
        let summed = 15.033334 + 148.0 / 30.0 + 1.0 / 30.0;
        assert!(summed > 20.0 && summed < 20.00001, "{summed}");
        assert_eq!(video_end(20.0, summed), 20.0);
        assert_eq!(
            logparse::loudness_curve(&[], video_end(20.0, summed)).len(),
            20
        );
        // frames that run on past a duration the header under-reports, by up to a second
        assert_eq!(video_end(25.0, 25.5), 25.5);
        assert_eq!(video_end(25.0, 40.0), 26.0);
        assert_eq!(video_end(25.139, 25.1), 25.139);
        // testvideo.mp4: 24.023333 s, its last frame (1001/30000 s) ends at 24.024
        assert_eq!(video_end(24.023333, 720.0 * 1001.0 / 30000.0), 24.024);
    }

    #[tokio::test]
    async fn decoding_in_parts_finds_what_one_process_finds() {
        parts_match_one_process("long.mp4", SkipFrames::NonRef).await;
        parts_match_one_process("long.mp4", SkipFrames::Bidir).await;
    }

    /// An MP4's parts start at keyframes its index lists (see `vidsight_media::mp4index`):
    /// all of them, where ffprobe's listing looks a few seconds past each cut.
    #[tokio::test]
    async fn an_mp4_is_cut_at_a_keyframe_only_its_index_shows() {
        // keyframes at 0, 2 and 18.4 s of 24: the one nearest the even cut (12 s) is 6.4 s
        // past it
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sparse.mp4");
        let status = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-f", "lavfi", "-i"])
            .arg("testsrc2=size=160x120:rate=25:duration=24")
            .args([
                "-c:v",
                "libx264",
                "-bf",
                "2",
                "-g",
                "1000",
                "-keyint_min",
                "1000",
            ])
            .args(["-sc_threshold", "0", "-force_key_frames", "0,2,18.4"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        let tools = MediaTools::default();
        let media = tools.probe(&path).await.unwrap();
        let (parts, packets) = lay_out(&tools, &path, &media, true, 2).await;
        let starts: Vec<f64> = parts.iter().map(|part| part.start).collect();
        assert_eq!(starts, vec![0.0, 18.4], "{parts:?}");
        assert!(
            packets.len() >= 100,
            "the first seconds' packets: {packets:?}"
        );
        // ffprobe, seeking to the cut, lands on the keyframe at 2 s and reads on to 17
        let listed = tools
            .listed_layout(&path, media.start_time, 5.0, &[12.0], true)
            .await
            .unwrap();
        assert_eq!(listed.keyframes, vec![2.0]);
    }

    /// MPEG-TS has no index: each part seeks a second early, decodes from the keyframe it
    /// finds and trims to its start, on the stream's own timestamps (1.4 s in).
    #[tokio::test]
    async fn an_mpeg_ts_is_decoded_in_parts_too() {
        parts_match_one_process("long.ts", SkipFrames::Bidir).await;
    }

    /// x265's P-frames refer to B-frames: only the frames nothing refers to are left out,
    /// one at a time. A fade through black from a shaking hand-held shot (the x265 file of
    /// the accuracy corpus, rebuilt from the same clips) was judged on every other frame and
    /// gave two cuts; on the stream's frames its second half is a fade in.
    #[tokio::test]
    async fn a_fade_through_black_left_out_one_frame_in_two_is_not_two_cuts() {
        let Some(media) = testing::shared_media() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let clip = dir.path().join("fade-through-black.mp4");
        let (carphone, goldeneye) = (
            media.join("carphone_pristine.mp4"),
            media.join("goldeneye-vfr-drop3.mp4"),
        );
        testing::ffmpeg(&[
            "-t",
            "3.9",
            "-i",
            carphone.to_str().unwrap(),
            "-ss",
            "4.0",
            "-t",
            "4.5",
            "-i",
            goldeneye.to_str().unwrap(),
            "-filter_complex",
            "[0:v]fps=24,scale=854:480,setsar=1,trim=duration=2.5,\
             scale=1.2*iw:1.2*ih,crop=iw/1.2:ih/1.2:'iw*0.083+iw*0.07*sin(t*37)':'ih*0.083+ih*0.07*cos(t*29)',\
             scale=854:480,settb=1/24,setpts=N[a];\
             [1:v]fps=24,scale=854:480,setsar=1,trim=duration=2.5,settb=1/24,setpts=N[b];\
             [a][b]xfade=transition=fadeblack:duration=1.2:offset=1.3,format=yuv420p",
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            "log-level=error",
            clip.to_str().unwrap(),
        ]);
        let output = analyse_clip(&clip).await;
        assert_eq!(output.decoding.skipped, SkipFrames::NonRef);
        let transitions = &output.insights.transitions;
        // one boundary may fall on the way into black; coming out of it is a fade in
        let cuts = cut_times(&output);
        assert!(cuts.len() <= 1, "{transitions:?}");
        assert!(
            transitions
                .iter()
                .any(|found| found.kind == TransitionKind::FadeIn
                    && found.start < 2.2
                    && found.end > 2.2),
            "{transitions:?}"
        );
    }

    /// ffmpeg's AVI of an H.264 stream with B-frames: its index counts an empty entry for
    /// every frame it holds (twice the frames), which is no sign of a truncated file.
    #[tokio::test]
    async fn an_avi_counting_empty_entries_is_not_taken_for_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let mp4 = pyramid_clip(dir.path(), "normal");
        let avi = dir.path().join("remuxed.avi");
        testing::ffmpeg(&[
            "-i",
            mp4.to_str().unwrap(),
            "-c",
            "copy",
            avi.to_str().unwrap(),
        ]);
        let tools = MediaTools::default();
        let media = tools.probe(&avi).await.unwrap();
        assert!(media.frame_count.unwrap_or(0) > 500, "{media:?}");
        let output = analyse_clip(&avi).await;
        assert_eq!(output.frames, 300, "{:?}", output.decoding);
        assert_eq!(cut_times(&output).len(), 3);
    }

    /// A video decoded in parts has its sound measured by a process of its own, started
    /// before the first pass: a pass given up (its parts did not meet, or it left out frames
    /// it needed) and started again leaves it running, and the pass that ends takes what it
    /// measured, once.
    #[tokio::test]
    async fn the_sound_outlives_a_pass_started_again() {
        let dir = tempfile::tempdir().unwrap();
        let clip = dir.path().join("sound.mp4");
        testing::ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000:duration=30,volume=enable='between(t,12,16)':volume=0",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=192x108:rate=25:duration=30",
            "-map",
            "1:v",
            "-map",
            "0:a",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-g",
            "50",
            "-c:a",
            "aac",
            clip.to_str().unwrap(),
        ]);
        let tools = MediaTools::default();
        let media = tools.probe(&clip).await.unwrap();
        let mut three = settings();
        three.decoders = 3;
        assert!(part_count(&media, &three) > 1);
        let (command, peak) = sound_command(&tools, &clip, &media, &three);
        let mut sound = Some(source::Sound::start(command, peak).unwrap());
        // a pass in parts, given up a third of the way
        let given_up = tokio::sync::Notify::new();
        let progress = |fraction: f64| {
            if fraction > 0.3 {
                given_up.notify_one();
            }
        };
        tokio::select! {
            // the pass is given up as soon as it has gone that far
            biased;
            _ = given_up.notified() => {}
            _ = run_pass(&tools, &clip, &media, &three, &progress, true, true, &mut sound) => {
                panic!("the pass was to be given up before its end")
            }
        }
        assert!(sound.is_some(), "the sound's process outlives the pass");
        // again, in one process
        let pass = run_pass(
            &tools,
            &clip,
            &media,
            &three,
            &|_| {},
            false,
            true,
            &mut sound,
        );
        let Pass::Done(again) = pass.await.unwrap() else {
            panic!("the second pass ends")
        };
        assert!(sound.is_none(), "the pass that ends takes what it measured");
        assert_eq!(again.decoding.parts, 1);
        let mut one = settings();
        one.decoders = 1;
        let whole = analyze(&tools, &clip, &media, &one, &|_| {}).await.unwrap();
        assert_eq!(whole.decoding.parts, 1);
        let (a, b) = (&whole.insights, &again.insights);
        assert_eq!(a.silence.len(), 1, "{:?}", a.silence);
        assert!((a.silence[0].start - 12.0).abs() < 0.1, "{:?}", a.silence);
        assert_eq!(a.silence, b.silence);
        assert_eq!(a.loudness, b.loudness);
        assert!(b.loudness.is_some());
    }

    /// AVI and FLV are seeked in like MPEG-TS (near a time, a second early): an AVI of
    /// MPEG-4 Part 2 (no B-frames, every frame decoded), one with two B-frames in a row
    /// (its anchors have no presentation time in the listing; every frame decoded, told by
    /// the listing before any decoding), an FLV of H.264.
    #[tokio::test]
    async fn avi_and_flv_are_decoded_in_parts_too() {
        parts_match_one_process("long.avi", SkipFrames::None).await;
        parts_match_one_process("long-bframes.avi", SkipFrames::None).await;
        parts_match_one_process("long.flv", SkipFrames::Bidir).await;
    }

    async fn parts_match_one_process(name: &str, skip: SkipFrames) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        // 40 s: eight 5-second shots (cuts every 5 s, some at the parts' seams), a keyframe
        // at least every 2 s, B-pyramids (frames are skipped too), sound with a silent gap
        let sources = [
            "testsrc2=size=192x108:rate=25",
            "mandelbrot=size=192x108:rate=25",
            "testsrc=size=192x108:rate=25,hue=h=90",
            // a field of noise whose changes saturate (seeded: in this one, steps over two
            // frames scored like cuts against steps over one, and were taken for cuts)
            "cellauto=size=192x108:rate=25:rule=110:seed=17",
        ];
        let mut graph = String::new();
        for index in 0..8 {
            graph.push_str(&format!(
                "{},trim=duration=5,setpts=PTS-STARTPTS[v{index}];",
                sources[index % 4]
            ));
        }
        graph.push_str("[v0][v1][v2][v3][v4][v5][v6][v7]concat=n=8:v=1:a=0,format=yuv420p[out]");
        // the sound starts half a second after the pictures (the file's clock is the
        // pictures', a process that reads only the sound must not count from it)
        testing::ffmpeg(&[
            "-itsoffset",
            "0.5",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000:duration=40,volume=enable='between(t,12,16)':volume=0",
            "-filter_complex",
            &graph,
            "-map",
            "[out]",
            "-map",
            "0:a",
            "-g",
            "50",
        ]
        .into_iter()
        .chain(if name.ends_with(".avi") {
            let b_frames = if name.contains("bframes") { "2" } else { "0" };
            [
                "-c:v", "mpeg4", "-q:v", "4", "-bf", b_frames, "-c:a", "mp3", "-ar", "48000",
            ]
        } else {
            [
                "-c:v", "libx264", "-preset", "veryfast", "-bf", "3", "-c:a", "aac", "-ar", "48000",
            ]
        })
        .chain([path.to_str().unwrap()])
        .collect::<Vec<_>>()
        );
        let tools = MediaTools::default();
        let media = tools.probe(&path).await.unwrap();
        let (width, height) = analysis_frame_size(&media, settings().frame_width);
        let frame_bytes = frames::yuv420_len(width as usize, height as usize);
        // three decoders: a part each, two seams
        let count = source::part_count(media.duration, &media.container, 3, frame_bytes, media.fps);
        let (parts, packets) = lay_out(&tools, &path, &media, true, count).await;
        assert!(
            packets.len() >= 100,
            "the first 4 s of packets: {packets:?}"
        );
        assert!(parts.len() >= 3, "{parts:?}");
        for pair in parts.windows(2) {
            assert_eq!(pair[0].end, Some(pair[1].start), "{parts:?}");
        }

        let mut one = settings();
        one.decoders = 1;
        one.skip_b_frames = skip == SkipFrames::Bidir;
        let mut three = one.clone();
        three.decoders = 3;
        let whole = analyze(&tools, &path, &media, &one, &|_| {}).await.unwrap();
        let split = analyze(&tools, &path, &media, &three, &|_| {})
            .await
            .unwrap();

        assert_eq!(split.decoding.parts, parts.len());
        assert_eq!(whole.decoding.parts, 1);
        assert_eq!(split.decoding.skipped, skip);
        assert_eq!(whole.decoding.skipped, skip);
        assert_eq!(split.frames, whole.frames, "no frame lost or seen twice");
        let cuts = cut_times(&whole);
        assert_eq!(cuts.len(), 7, "{cuts:?}");
        for (expected, found) in (1..8).map(|k| 5.0 * k as f64).zip(&cuts) {
            assert!(
                (expected - found).abs() <= 0.04 + 1e-3,
                "{found} is not {expected}"
            );
        }
        let (a, b) = (&whole.insights, &split.insights);
        // the same times, to the microsecond (a start time printed to six decimals may
        // round the last one the other way)
        let same = |x: f64, y: f64| (x - y).abs() < 2e-6;
        let split_cuts = cut_times(&split);
        assert_eq!(split_cuts.len(), cuts.len());
        assert!(
            cuts.iter().zip(&split_cuts).all(|(x, y)| same(*x, *y)),
            "{cuts:?} {split_cuts:?}"
        );
        assert_eq!(a.transitions.len(), b.transitions.len());
        assert_eq!(a.shots.len(), b.shots.len());
        for (x, y) in a.shots.iter().zip(&b.shots) {
            assert!(same(x.start, y.start) && same(x.end, y.end), "{x:?} {y:?}");
            assert_eq!(x.keyframe, y.keyframe);
            assert_eq!(x.motion, y.motion);
        }
        assert_eq!(whole.keyframes.len(), split.keyframes.len());
        let (x, y) = (
            a.storyboard.as_ref().unwrap(),
            b.storyboard.as_ref().unwrap(),
        );
        assert_eq!(x.times.len(), y.times.len());
        assert!(x.times.iter().zip(&y.times).all(|(x, y)| same(*x, *y)));
        assert_eq!(x.sheets, y.sheets);
        // the sound, measured by its own process: the same silence and loudness
        assert_eq!(a.silence.len(), 1, "{:?}", a.silence);
        // (an AVI keeps no start offset for its sound: the gap is at 12 s there)
        let offset = if name.ends_with(".avi") { 0.0 } else { 0.5 };
        let gap = a.silence[0].start - offset;
        assert!((gap - 12.0).abs() < 0.1, "{:?}", a.silence);
        assert_eq!(a.silence, b.silence);
        assert_eq!(a.loudness, b.loudness);
    }

    #[tokio::test]
    async fn cuts_between_anchors_are_put_on_their_frame() {
        let dir = tempfile::tempdir().unwrap();
        // always three B-frames, no cut made a keyframe: I b B b P …, so the cuts at frames
        // 75, 150 and 225 fall on B-frames, and the anchors after them are 1–3 frames late
        let clip = clip_with(dir.path(), 3, "scenecut=0:b-adapt=0:keyint=300");
        let output = analyse_clip(&clip).await;
        assert_eq!(output.decoding.skipped, SkipFrames::Bidir);
        assert!(output.decoding.kept_share < 0.3, "{:?}", output.decoding);
        let cuts = cut_times(&output);
        assert_eq!(cuts.len(), 3, "{cuts:?}");
        // within one frame (the stretches are decoded leaving out what nothing refers to):
        // 3.0 is on a non-reference B-frame, 6.0 on the pyramid's reference one
        let expected = [3.04, 6.0, 9.04];
        for (expected, found) in expected.iter().zip(&cuts) {
            assert!((expected - found).abs() < 1e-3, "{found} is not {expected}");
        }
        let starts: Vec<f64> = output.insights.shots.iter().map(|s| s.start).collect();
        assert_eq!(starts[1..], cuts[..]);
        // the same stream in MPEG-TS, which is seeked in near a time: each stretch's process
        // lands before the one keyframe (at 0 s), not only before the stretch
        let ts = dir.path().join("remuxed.ts");
        testing::ffmpeg(&[
            "-i",
            clip.to_str().unwrap(),
            "-c",
            "copy",
            ts.to_str().unwrap(),
        ]);
        let remuxed = analyse_clip(&ts).await;
        assert_eq!(remuxed.decoding.skipped, SkipFrames::Bidir);
        let ts_cuts = cut_times(&remuxed);
        assert_eq!(ts_cuts.len(), 3, "{ts_cuts:?}");
        for (expected, found) in expected.iter().zip(&ts_cuts) {
            // the TS's clock starts 1.4 s in (see `FrameSource`); times count from its start
            assert!((expected - found).abs() < 1e-3, "{found} is not {expected}");
        }
        // without a pyramid nothing between two anchors is referred to: the stretches are
        // decoded again, every frame, and the cuts land on their frames
        let flat = clip_with(
            dir.path(),
            3,
            "scenecut=0:b-adapt=0:keyint=300:b-pyramid=none",
        );
        let output = analyse_clip(&flat).await;
        assert_eq!(output.decoding.skipped, SkipFrames::Bidir);
        let cuts = cut_times(&output);
        assert_eq!(cuts.len(), 3, "{cuts:?}");
        for (expected, found) in [3.0, 6.0, 9.0].iter().zip(&cuts) {
            assert!((expected - found).abs() < 1e-3, "{found} is not {expected}");
        }
    }

    #[tokio::test]
    async fn leaving_out_b_frames_that_p_frames_refer_to_is_noticed() {
        // x265's P-frames refer to the B-frames of its pyramids: decoding only the anchors
        // leaves them without their references, and the decoder says so
        let dir = tempfile::tempdir().unwrap();
        let clip = dir.path().join("hevc.mp4");
        testing::ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=6",
            "-c:v",
            "libx265",
            "-x265-params",
            "log-level=error",
            clip.to_str().unwrap(),
        ]);
        let tools = MediaTools::default();
        let input = vidsight_media::input_url(&clip);
        let frame_bytes = frames::yuv420_len(160, 120);
        let read = |skip: SkipFrames| {
            let (tools, input) = (tools.clone(), input.clone());
            async move {
                let command = Box::new(move |part: &source::Part| {
                    decode_command(&tools, &input, (part, 0.0), (160, 120), 0, skip, None)
                }) as source::PartCommand;
                let mut source = source::FrameSource::start(
                    vec![source::Part::WHOLE],
                    command,
                    1,
                    (frame_bytes, 16),
                    25.0,
                    (),
                )
                .unwrap();
                let mut count = 0;
                while let Some(frame) = source.next().await.unwrap() {
                    source.recycle(frame.picture);
                    count += 1;
                }
                let findings = source.finish().await.unwrap();
                (count, findings.missing_references)
            }
        };
        let (anchors, missing) = read(SkipFrames::Bidir).await;
        assert!(
            missing && anchors > 0 && anchors < 150,
            "{anchors} {missing}"
        );
        let (kept, missing) = read(SkipFrames::NonRef).await;
        assert!(!missing && kept > anchors, "{kept} {missing}");
    }

    #[tokio::test]
    async fn b_frames_too_many_in_a_row_are_decoded_whole() {
        let dir = tempfile::tempdir().unwrap();
        let clip = clip_with(dir.path(), 5, "b-pyramid=none:b-adapt=0");
        // decoding starts leaving B-frames out, sees five in a row go missing, tries again
        // leaving out frames nothing refers to (the same five), then decodes every frame
        let output = analyse_clip(&clip).await;
        assert_eq!(
            output.decoding.skipped,
            SkipFrames::None,
            "{:?}",
            output.decoding
        );
        assert_eq!(output.decoding.kept_share, 1.0);
        assert_eq!(output.frames, 300, "every frame, once");
        let cuts = cut_times(&output);
        assert_eq!(cuts.len(), 3, "{cuts:?}");
        for (expected, found) in [3.0, 6.0, 9.0].iter().zip(&cuts) {
            assert!(
                (expected - found).abs() <= 0.04 + 1e-3,
                "{found} is not {expected}"
            );
        }
        // and short videos are not sampled at all
        let short = testing::lavfi_clip(
            dir.path(),
            "short.mp4",
            "testsrc2=size=160x120:rate=25:duration=3",
        );
        let output = analyse_clip(&short).await;
        assert_eq!(output.decoding.skipped, SkipFrames::None);
        assert_eq!(output.frames, 75);
        // nor are streams without B-frames (x264's ultrafast has none): nothing to skip
        let flat = testing::lavfi_clip(
            dir.path(),
            "no-b-frames.mp4",
            "testsrc2=size=160x120:rate=25:duration=10",
        );
        let media = MediaTools::default().probe(&flat).await.unwrap();
        assert_eq!(media.reorder_delay, Some(0));
        let output = analyse_clip(&flat).await;
        assert_eq!(output.decoding.skipped, SkipFrames::None);
        assert_eq!(output.frames, 250);
    }

    #[tokio::test]
    async fn bars_then_content_gives_one_bars_range_thumbnails_and_a_storyboard() {
        let dir = tempfile::tempdir().unwrap();
        let clip = testing::lavfi_clip(
            dir.path(),
            "bars.mp4",
            "smptebars=size=320x240:rate=25:duration=2[a];\
             testsrc2=size=320x240:rate=25:duration=3[b];\
             [a][b]concat=n=2:v=1:a=0",
        );
        let output = analyse_clip(&clip).await;
        let insights = &output.insights;

        assert_eq!(insights.bars.len(), 1, "{:?}", insights.bars);
        assert_eq!(insights.bars[0].start, 0.0);
        assert!(
            (insights.bars[0].end - 2.0).abs() <= 0.04 + 1e-6,
            "{:?}",
            insights.bars
        );

        // every keyframe has its thumbnail, 160 wide, named in the insights
        assert!(!output.keyframes.is_empty());
        for keyframe in &output.keyframes {
            let shot = insights
                .shots
                .iter()
                .find(|shot| shot.keyframe.as_deref() == Some(keyframe.name.as_str()))
                .expect("each keyframe belongs to a shot");
            assert_eq!(
                shot.thumbnail.as_deref(),
                Some(keyframe.thumbnail.name.as_str())
            );
            assert!(keyframe.thumbnail.name.ends_with("-small.jpg"));
            assert_eq!(jpeg_size(&keyframe.jpeg), (320, 240));
            assert_eq!(jpeg_size(&keyframe.thumbnail.jpeg), (160, 120));
        }

        // one tile a second, on one sheet, from 0 to the end
        let storyboard = insights.storyboard.as_ref().expect("a storyboard");
        assert_eq!(storyboard.interval, 1.0);
        assert_eq!((storyboard.tile_width, storyboard.tile_height), (160, 120));
        assert_eq!(storyboard.times, vec![0.0, 1.0, 2.0, 3.0, 4.0]);
        assert!((storyboard.end - 5.0).abs() < 0.05, "{}", storyboard.end);
        assert_eq!(storyboard.sheets, vec!["sheet-000.jpg"]);
        assert_eq!(output.storyboard.len(), 1);
        assert_eq!(jpeg_size(&output.storyboard[0].jpeg), (5 * 160, 120));
    }

    #[tokio::test]
    async fn tiles_take_the_frames_own_timestamps() {
        // 10 fps, with the frames of 1.0–2.5 s dropped: the tile due at 2 s is the frame at
        // 2.5 s, and there is none for 1 s
        let dir = tempfile::tempdir().unwrap();
        let clip = dir.path().join("vfr.mkv");
        testing::ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x180:rate=10:duration=4",
            "-vf",
            "select='not(between(t,0.95,2.45))'",
            "-fps_mode",
            "vfr",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            clip.to_str().unwrap(),
        ]);
        let output = analyse_clip(&clip).await;
        let storyboard = output.insights.storyboard.expect("a storyboard");
        assert_eq!(storyboard.times, vec![0.0, 2.5, 3.0], "{storyboard:?}");
        // testsrc2 moves: no bars
        assert!(
            output.insights.bars.is_empty(),
            "{:?}",
            output.insights.bars
        );
    }

    #[test]
    fn frame_size_honours_display_aspect_and_stays_even() {
        let media = MediaInfo {
            display_width: 1024,
            display_height: 576,
            ..MediaInfo::default()
        };
        assert_eq!(analysis_frame_size(&media, 480), (480, 270));
        let small = MediaInfo {
            display_width: 175,
            display_height: 143,
            ..MediaInfo::default()
        };
        assert_eq!(analysis_frame_size(&small, 480), (174, 142));
        // a phone video held upright: its height is bounded, not its width
        let portrait = MediaInfo {
            display_width: 1080,
            display_height: 1920,
            ..MediaInfo::default()
        };
        assert_eq!(analysis_frame_size(&portrait, 480), (270, 480));
    }

    #[test]
    fn pictures_are_decoded_halved_only_where_the_frame_size_allows() {
        let media = |codec: &str, (width, height): (u32, u32), display: (u32, u32)| MediaInfo {
            video_codec: codec.to_owned(),
            width,
            height,
            display_width: display.0,
            display_height: display.1,
            ..MediaInfo::default()
        };
        let steps = |media: MediaInfo| lowres_steps(&media, analysis_frame_size(&media, 640));
        assert_eq!(steps(media("mpeg2video", (1280, 720), (1280, 720))), 1);
        assert_eq!(steps(media("mpeg2video", (1920, 1080), (1920, 1080))), 1);
        assert_eq!(steps(media("mjpeg", (3840, 2160), (3840, 2160))), 2);
        // turned upright to be shown
        assert_eq!(steps(media("mpeg4", (1280, 720), (720, 1280))), 1);
        // H.264 cannot; a picture the frame size does not fit in twice is not halved
        assert_eq!(steps(media("h264", (1920, 1080), (1920, 1080))), 0);
        assert_eq!(steps(media("mpeg4", (854, 480), (854, 480))), 0);
        // anamorphic PAL shown 16:9: its 720 stored columns become 1024 shown
        assert_eq!(steps(media("mpeg2video", (720, 576), (1024, 576))), 0);
        // an input option: before the input
        let command = decode_command(
            &MediaTools::default(),
            "file:in.ts",
            (&source::Part::WHOLE, 0.0),
            (640, 360),
            1,
            SkipFrames::None,
            None,
        );
        let args: Vec<String> = command
            .as_std()
            .get_args()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        let at = |wanted: &str| args.iter().position(|arg| arg == wanted);
        assert_eq!(at("-lowres").map(|index| &args[index + 1][..]), Some("1"));
        assert!(at("-lowres") < at("-i"), "{args:?}");
    }

    /// Stretches decoded together, by one process, are what each decoded by a process of its
    /// own is; one that has no frame where its gap says it starts costs the others nothing.
    /// (All after the keyframe at 0 s: the first two are one input, decoded once from there,
    /// so are the last two.)
    #[tokio::test]
    async fn stretches_decoded_together_are_those_decoded_one_by_one() {
        let dir = tempfile::tempdir().unwrap();
        // anchors every fourth frame at 25 fps (I b B b P …): the cuts at frames 75, 150
        // and 225 fall between 72 and 76, 148 and 152, 224 and 228
        let clip = clip_with(dir.path(), 3, "scenecut=0:b-adapt=0:keyint=300");
        let tools = MediaTools::default();
        let media = tools.probe(&clip).await.unwrap();
        let size = analysis_frame_size(&media, 480);
        let refiner = std::sync::Arc::new(refiner(&tools, &clip, &media, size, 0, 1, 1));
        let gap = |before: f64, at: f64| refine::Gap {
            frame: (at * 25.0).round() as u64,
            before,
            at,
            keyframe: Some(0.0),
        };
        // a cut, none (the mandelbrot's zoom), no frame at 4.01 s, two cuts
        let gaps = [
            gap(2.88, 3.04),
            gap(4.0, 4.16),
            gap(4.01, 4.17),
            gap(5.92, 6.08),
            gap(8.96, 9.12),
        ];
        let together = refiner
            .decode_together(&gaps, SkipFrames::NonRef, 0.0, true)
            .await
            .expect("one process decodes them all");
        assert_eq!(together.len(), gaps.len());
        for (gap, stretch) in gaps.iter().zip(&together) {
            let alone = refiner
                .decode_together(std::slice::from_ref(gap), SkipFrames::NonRef, 0.0, true)
                .await
                .unwrap();
            // the same frames, the same changes (times from another part's start: equal to
            // the microsecond)
            let same = match (&alone[0], stretch) {
                (Some(x), Some(y)) => {
                    x.across == y.across
                        && x.steps.len() == y.steps.len()
                        && x.steps
                            .iter()
                            .zip(&y.steps)
                            .all(|(p, q)| (p.0 - q.0).abs() < 1e-6 && p.1 == q.1)
                }
                (x, y) => x == y,
            };
            assert!(same, "{gap:?}: {:?} alone, {stretch:?} together", alone[0]);
        }
        assert!(together[2].is_none(), "{:?}", together[2]);
        // what they show: the cuts within a frame (non-reference frames left out), no cut
        let placed: Vec<(u64, refine::Placed)> = refiner.clone().place(gaps.to_vec()).await;
        let on = |frame: u64| {
            placed
                .iter()
                .find(|found| found.0 == frame)
                .map(|found| found.1)
        };
        let at = |frame: u64| match on(frame) {
            Some(refine::Placed::At(time)) => time,
            other => panic!("{frame}: {other:?}"),
        };
        assert_eq!(placed.len(), 4, "{placed:?}");
        assert_eq!(on(104), Some(refine::Placed::NotACut));
        for (frame, time) in [(76, 3.04), (152, 6.0), (228, 9.04)] {
            assert!((at(frame) - time).abs() < 1e-3, "{placed:?}");
        }
        // checked as a pass finds them: no process until `EARLY_BATCH` stretches wait, then
        // one for them; the last when the pass is over, with the same results (the five
        // again as needed: a frame checked twice is placed once)
        let found: Vec<refine::Gap> = gaps
            .iter()
            .cycle()
            .take(refine::EARLY_BATCH + 1)
            .copied()
            .collect();
        let mut checks =
            refine::Checks::new(super::refiner(&tools, &clip, &media, size, 0, 1, 1), 10);
        for gap in &found[..refine::EARLY_BATCH - 1] {
            checks.start(*gap);
        }
        assert_eq!(checks.processes(), 0);
        checks.start(found[refine::EARLY_BATCH - 1]);
        assert_eq!(checks.processes(), 1);
        checks.start(found[refine::EARLY_BATCH]);
        let checked = checks.finish().await;
        assert_eq!(checked.len(), placed.len(), "{checked:?}");
        for (frame, found) in &placed {
            let same = match (checked.get(frame), found) {
                (Some(refine::Placed::At(x)), refine::Placed::At(y)) => (x - y).abs() < 1e-6,
                (other, found) => other == Some(found),
            };
            assert!(same, "{frame}: {checked:?}");
        }
    }

    /// The lavfi `graph` as broadcast MPEG-2 in MPEG-TS at `path`: two B-frames in a row,
    /// a GOP of 12.
    fn broadcast_ts(path: &Path, graph: &str) -> std::path::PathBuf {
        let codec = ["-c:v", "mpeg2video", "-q:v", "4", "-bf", "2", "-g", "12"];
        encoded(path, graph, &codec)
    }

    /// The clip at `path` analysed from its anchors (as it is by default), and with every
    /// frame decoded.
    async fn anchors_and_every_frame(path: &Path) -> (AnalysisOutput, AnalysisOutput) {
        let output = analyse_clip(path).await;
        assert_eq!(output.decoding.skipped, SkipFrames::Bidir, "{path:?}");
        let mut every = settings();
        every.skip_b_frames = false;
        let tools = MediaTools::default();
        let media = tools.probe(path).await.unwrap();
        let whole = analyze(&tools, path, &media, &every, &|_| {})
            .await
            .unwrap();
        assert_eq!(whole.decoding.skipped, SkipFrames::None, "{path:?}");
        (output, whole)
    }

    /// The lavfi `graph` encoded with `codec` (ffmpeg's output options) at `path`.
    fn encoded(path: &Path, graph: &str, codec: &[&str]) -> std::path::PathBuf {
        let mut args = vec!["-f", "lavfi", "-i", graph];
        args.extend(codec);
        args.push(path.to_str().unwrap());
        testing::ffmpeg(&args);
        path.to_path_buf()
    }

    /// A second of black between two cuts, decoded from the anchors: two cuts, not a dip
    /// through black (its fall and rise are seen only on the mixes that stand in for the
    /// frames left out).
    #[tokio::test]
    async fn a_second_of_black_between_two_cuts_is_two_cuts() {
        let dir = tempfile::tempdir().unwrap();
        let path = broadcast_ts(
            &dir.path().join("black.ts"),
            "testsrc2=size=640x360:rate=30:duration=3[a];\
             color=black:size=640x360:rate=30:duration=1[b];\
             mandelbrot=size=640x360:rate=30,trim=duration=3[c];\
             [a][b][c]concat=n=3:v=1:a=0,format=yuv420p",
        );
        let output = analyse_clip(&path).await;
        assert_eq!(output.decoding.skipped, SkipFrames::Bidir);
        let kinds: Vec<(TransitionKind, f64)> = output
            .insights
            .transitions
            .iter()
            .map(|t| (t.kind, t.start))
            .collect();
        assert_eq!(kinds.len(), 2, "{kinds:?}");
        for ((kind, start), expected) in kinds.iter().zip([3.0, 4.0]) {
            assert_eq!(*kind, TransitionKind::Cut, "{kinds:?}");
            assert!((start - expected).abs() < 1e-3, "{kinds:?}");
        }
    }

    /// MPEG-4 Part 2 with B-frames in AVI, as ffmpeg writes it and as Xvid does (each
    /// B-frame packed with the P-frame before it, an empty frame in its place): the stream's
    /// time base is a frame, to which ffmpeg rounds where a stretch's decoding ends; the cuts
    /// decoded from the anchors are on the frames every frame decoded puts them on (the
    /// encoder starts each shot on an I-frame: the anchor a stretch ends on is the cut).
    #[tokio::test]
    async fn mpeg4_in_avi_decoded_from_its_anchors_finds_its_cuts_on_their_frames() {
        let dir = tempfile::tempdir().unwrap();
        // frames 75 and 150 (anchors three frames after the anchor before), on the file's
        // clock: ffmpeg's AVI of a stream with B-frames shows its first frame a frame in,
        // Xvid's packed one three frames in
        for (encoder, expected) in [("mpeg4", [3.04, 6.04]), ("libxvid", [3.12, 6.12])] {
            let path = encoded(
                &dir.path().join(format!("{encoder}.avi")),
                "testsrc2=size=640x360:rate=25:duration=3[a];\
                 mandelbrot=size=640x360:rate=25,trim=duration=3[b];\
                 testsrc=size=640x360:rate=25:duration=3,hue=h=90,vflip[c];\
                 [a][b][c]concat=n=3:v=1:a=0,format=yuv420p",
                &["-c:v", encoder, "-q:v", "4", "-bf", "2"],
            );
            let (output, whole) = anchors_and_every_frame(&path).await;
            for output in [&whole, &output] {
                let cuts = cut_times(output);
                assert_eq!(cuts.len(), 2, "{encoder}: {cuts:?} {:?}", output.decoding);
                for (expected, found) in expected.iter().zip(&cuts) {
                    assert!(
                        (expected - found).abs() < 1e-3,
                        "{encoder}: {found} is not {expected}"
                    );
                }
            }
        }
    }

    /// An MPEG-TS whose pictures start two seconds after its sound: the checks' brief
    /// stream probe (a tenth of a second) finds no picture size, the pictures still decode,
    /// and the cuts between anchors are put on their frames.
    #[tokio::test]
    async fn cuts_are_checked_in_a_ts_whose_pictures_start_late() {
        let dir = tempfile::tempdir().unwrap();
        // the pictures, a second input after the sound, two seconds late
        let pictures = "testsrc2=size=640x360:rate=25:duration=3.04[a];\
             mandelbrot=size=640x360:rate=25,trim=duration=2.92[b];\
             testsrc=size=640x360:rate=25:duration=3,hue=h=90,vflip[c];\
             [a][b][c]concat=n=3:v=1:a=0,format=yuv420p";
        let path = encoded(
            &dir.path().join("late.ts"),
            "sine=frequency=440:sample_rate=48000:duration=11",
            &[
                "-itsoffset",
                "2",
                "-f",
                "lavfi",
                "-i",
                pictures,
                "-map",
                "0:a",
                "-map",
                "1:v",
                "-c:v",
                "mpeg2video",
                "-q:v",
                "4",
                "-bf",
                "2",
                "-g",
                "12",
                "-sc_threshold",
                "1000000000",
                "-c:a",
                "mp2",
            ],
        );
        let (output, whole) = anchors_and_every_frame(&path).await;
        let (cuts, expected) = (cut_times(&output), cut_times(&whole));
        assert_eq!(expected.len(), 2, "{expected:?}");
        assert_eq!(cuts.len(), 2, "{cuts:?}");
        for (found, expected) in cuts.iter().zip(&expected) {
            assert!((found - expected).abs() < 1e-3, "{found} is not {expected}");
        }
    }

    /// MPEG-2 with B-frames in MPEG-TS, as broadcast: decoded at half its size (the frame
    /// size asked for is half the picture's), its anchors only (nothing refers to its
    /// B-frames, two in a row), the cuts between them put on their frames.
    #[tokio::test]
    async fn mpeg2_decoded_halved_finds_its_cuts_on_their_frames() {
        let dir = tempfile::tempdir().unwrap();
        let path = broadcast_ts(
            &dir.path().join("broadcast.ts"),
            "testsrc2=size=960x540:rate=25:duration=3[a];\
             mandelbrot=size=960x540:rate=25,trim=duration=3[b];\
             testsrc=size=960x540:rate=25:duration=3,hue=h=90,vflip[c];\
             [a][b][c]concat=n=3:v=1:a=0,format=yuv420p",
        );
        let tools = MediaTools::default();
        let media = tools.probe(&path).await.unwrap();
        let mut halved = settings();
        halved.frame_width = 480;
        assert_eq!(lowres_steps(&media, analysis_frame_size(&media, 480)), 1);
        let output = analyze(&tools, &path, &media, &halved, &|_| {})
            .await
            .unwrap();
        assert_eq!(output.decoding.skipped, SkipFrames::Bidir);
        // I B B P B B P …: a third of the frames (the encoder's scene-change I-frames aside)
        assert!(
            output.frames < 225 / 2,
            "{} {:?}",
            output.frames,
            output.decoding
        );
        // the same with every frame decoded: the same cuts
        let mut every = halved.clone();
        every.skip_b_frames = false;
        let whole = analyze(&tools, &path, &media, &every, &|_| {})
            .await
            .unwrap();
        assert_eq!(whole.frames, 225, "{:?}", whole.decoding);
        assert_eq!(whole.decoding.skipped, SkipFrames::None);
        for output in [&output, &whole] {
            let cuts = cut_times(output);
            assert_eq!(cuts.len(), 2, "{cuts:?}");
            // the TS's clock starts 1.4 s in; times count from its start
            for (expected, found) in [3.0, 6.0].iter().zip(&cuts) {
                assert!((expected - found).abs() < 1e-3, "{found} is not {expected}");
            }
        }
        // the keyframes are the frame size asked for
        let size = images::jpeg_size(&output.keyframes[0].jpeg);
        assert_eq!(size, (480, 270));
    }
}
