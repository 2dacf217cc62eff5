//! Where the analysed frames come from.
//!
//! A short video is decoded by one ffmpeg process. A longer one is cut at keyframes into
//! parts that several ffmpeg processes decode side by side: one decoder's frame threads
//! keep about 1.4 of 2 cores busy on reference frames that wait on each other, while
//! separate parts wait on nothing. The frames are still read in order, so every detector
//! sees one continuous stream: the part being read is decoded live, the next ones into a
//! bounded read-ahead that they share (memory does not grow with the video; one decoded
//! ahead may hold all its pictures, see `Budget`), and a part starts when one of the
//! `decoders` running has been decoded (and waits, whole, in the read-ahead), at most one
//! part more than `decoders` holding frames. Each part's reader measures its pictures as
//! it reads them (see [`Measure`]), so a part read ahead is measured while it is decoded,
//! not once its turn comes. Each part's frame times are put back on the file's clock; the
//! sound is measured by one more process over the whole file.
//!
//! A part starts exactly at a keyframe and ends before the next part's first frame
//! (`trim`). In a container with an index (MP4, Matroska) `-ss` lands on that keyframe; in
//! one without (MPEG-TS/PS, where ffmpeg seeks by searching timestamps and lands near the time
//! asked, on any packet) the part seeks [`Part::lead`] seconds earlier, the decoder waits
//! for a keyframe (the pictures before it have nothing to refer to), and everything shown
//! before the part's start is trimmed. Frames before its start that a seek may bring
//! (open-GOP leading pictures) are trimmed too, so no frame is seen twice or lost at a
//! seam. Should parts still not meet (a stream whose timestamps jump), the analysis is
//! told ([`SEAM_SLACK_SECONDS`]) and starts again in one process.
use crate::logparse::{frame_time, parse_line, LogEvent};
use std::collections::VecDeque;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use vidsight_domain::{Error, ErrorCode, Result};

/// Videos shorter than this are decoded by one process.
pub const MIN_SPLIT_SECONDS: f64 = 20.0;
/// A part shorter than this costs more to start (a process, a seek) than it saves.
pub const MIN_PART_SECONDS: f64 = 6.0;
/// The most parts a video is cut into (a day at the usual 20 s parts). A header may claim
/// any duration: the parts' list must not grow with it; longer parts only wait more on
/// their read-ahead.
pub const MAX_PARTS: usize = 4096;
/// Pictures the parts after the one being read may hold decoded, all together (the one
/// being read holds at most its own read-ahead besides: see `Budget`).
pub const READ_AHEAD_BYTES: usize = 96 << 20;
/// Containers whose index makes a seek land exactly on the keyframe asked for.
const SEEKABLE: [&str; 2] = ["mov", "matroska"];
/// Containers seeked in near the time asked, not exactly: by searching timestamps (MPEG
/// transport and program streams: `.ts`/`.m2ts`, `.mpg`/`.vob`; an FLV without a keyframe
/// index), or by an index whose times are the demuxer's reckoning (AVI). Parts that do not
/// meet are noticed and the video decoded again in one process.
const SEEKABLE_NEAR: [&str; 4] = ["mpegts", "mpeg", "avi", "flv"];
/// Seconds before its keyframe a part in a [`SEEKABLE_NEAR`] container seeks to: more than
/// the search misses by (a fraction of a second) and than a frame's decoding delay.
pub const NEAR_SEEK_LEAD: f64 = 1.0;
/// How far a part's first frame may come after its start, or its last before its end,
/// before the parts are taken not to meet.
pub const SEAM_SLACK_SECONDS: f64 = 2.0;

/// How a container is seeked in, by its name as ffprobe gives it (`mov,mp4,…`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seeking {
    /// An index: `-ss` lands on the keyframe.
    Exact,
    /// A timestamp search: near the time asked.
    Near,
    /// Not worth splitting (no reliable way to land on a keyframe).
    None,
}

pub fn seeking(container: &str) -> Seeking {
    let names = || container.split(',').map(str::trim);
    if names().any(|name| SEEKABLE.contains(&name)) {
        Seeking::Exact
    } else if names().any(|name| SEEKABLE_NEAR.contains(&name)) {
        Seeking::Near
    } else {
        Seeking::None
    }
}

/// True for AVI (`avi` among the container's names): its index's times are the decoding
/// order's, a frame or two after the presentation times of keyframes with B-frames held back.
pub fn is_avi(container: &str) -> bool {
    container.split(',').any(|name| name.trim() == "avi")
}

/// One stretch of the video, in seconds from its start: from a keyframe to the next part's
/// (`None`: to the end).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Part {
    pub start: f64,
    pub end: Option<f64>,
    /// Seconds before `start` its process seeks to (0: the seek lands on `start`, or
    /// there is none); what it decodes before `start` is trimmed.
    pub lead: f64,
}

impl Part {
    pub const WHOLE: Part = Part {
        start: 0.0,
        end: None,
        lead: 0.0,
    };
}

/// How many parts a video of `duration` seconds is worth cutting into, aiming at: one per
/// decoder at least, each short enough that the read-ahead holds half of it (`frame_bytes`
/// per picture, `decoded_fps` pictures a second), none shorter than [`MIN_PART_SECONDS`].
/// 1 means one process. Each process costs a start and a seek: two parts per decoder were
/// slower on the 720p H.264 minute (1.54 s against 1.45 s, docs/benchmarks.md), and parts
/// sized for every frame where only the anchors are decoded cost 3 s of CPU in 24 on its
/// ten minutes.
pub fn part_count(
    duration: f64,
    container: &str,
    decoders: usize,
    frame_bytes: usize,
    decoded_fps: f64,
) -> usize {
    let seekable = seeking(container) != Seeking::None;
    if decoders <= 1 || !seekable || duration.is_nan() || duration < MIN_SPLIT_SECONDS {
        return 1;
    }
    let longest = 2.0 * read_ahead_frames(decoders, frame_bytes) as f64 / decoded_fps.max(1.0);
    let wanted = decoders.max((duration / longest).ceil() as usize);
    let most = (duration / MIN_PART_SECONDS).floor().max(1.0) as usize;
    wanted.min(most).clamp(1, MAX_PARTS)
}

/// Pictures each part may hold decoded ahead of the reader: while it is being read, its
/// own; the parts after it share [`READ_AHEAD_BYTES`].
pub fn read_ahead_frames(decoders: usize, frame_bytes: usize) -> usize {
    (READ_AHEAD_BYTES / decoders.max(1) / frame_bytes.max(1)).max(8)
}

/// The read-ahead of a video of `duration` seconds in no more parts than decoders (a
/// minute or two): a whole part (`decoded_fps` pictures a second), up to
/// [`WHOLE_PART_BYTES`] a part, where that is more than [`read_ahead_frames`]. Its last
/// part, decoded beside the first, then never waits for the reader to come to it; the 720p
/// H.264 minute's second part held 258 of its 387 anchors and ended 0.2 s after the first.
/// None: the usual share.
pub fn whole_parts_ahead(
    parts: &[Part],
    duration: f64,
    decoded_fps: f64,
    decoders: usize,
    frame_bytes: usize,
) -> Option<usize> {
    if parts.len() < 2 || parts.len() > decoders || !duration.is_finite() {
        return None;
    }
    let longest = parts
        .iter()
        .map(|part| part.end.unwrap_or(duration) - part.start)
        .fold(0.0f64, f64::max);
    let frames = (longest * decoded_fps).ceil() as usize + 1;
    let most = WHOLE_PART_BYTES / frame_bytes.max(1);
    Some(frames.min(most)).filter(|frames| *frames > read_ahead_frames(decoders, frame_bytes))
}

/// The most [`whole_parts_ahead`] holds for one part.
pub const WHOLE_PART_BYTES: usize = 80 << 20;

/// Where to look for the keyframes that start parts 2…`count`: evenly spaced.
pub fn split_targets(duration: f64, count: usize) -> Vec<f64> {
    (1..count)
        .map(|index| duration * index as f64 / count as f64)
        .collect()
}

/// Parts starting at the video's start and at each keyframe found, keyframes closer than
/// [`MIN_PART_SECONDS`] / 2 to the previous start (a sparse index maps two targets to one
/// keyframe, or to one just after the start) left out. Each part's process seeks `lead`
/// seconds before its start. One part is [`Part::WHOLE`], whatever the lead.
pub fn parts_at(keyframes: &[f64], lead: f64) -> Vec<Part> {
    let mut starts = vec![0.0];
    for &keyframe in keyframes {
        if keyframe.is_finite() && keyframe - starts[starts.len() - 1] >= MIN_PART_SECONDS / 2.0 {
            starts.push(keyframe);
        }
    }
    if starts.len() == 1 {
        return vec![Part::WHOLE];
    }
    let mut parts: Vec<Part> = starts
        .windows(2)
        .map(|pair| Part {
            start: pair[0],
            end: Some(pair[1]),
            lead,
        })
        .collect();
    parts.push(Part {
        start: starts[starts.len() - 1],
        end: None,
        lead,
    });
    parts
}

/// At most `count` of `parts` (a video of `duration` seconds), joined where fewer, longer
/// parts are enough: each kept start is the one nearest an even cut into `count`.
pub fn fewer_parts(parts: Vec<Part>, count: usize, duration: f64) -> Vec<Part> {
    if count >= parts.len() || !duration.is_finite() {
        return parts;
    }
    let lead = parts.last().map_or(0.0, |part| part.lead);
    let starts: Vec<f64> = parts.iter().skip(1).map(|part| part.start).collect();
    let mut kept: Vec<f64> = Vec::with_capacity(count);
    for target in split_targets(duration, count) {
        let nearest = starts
            .iter()
            .copied()
            .min_by(|a, b| (a - target).abs().total_cmp(&(b - target).abs()));
        if let Some(start) = nearest {
            if kept.last().is_none_or(|last| start > *last) {
                kept.push(start);
            }
        }
    }
    parts_at(&kept, lead)
}

/// What an ffmpeg process printed on stderr, sorted out.
#[derive(Default)]
pub struct Findings {
    /// Each frame's time on the file's clock.
    pub frame_times: Vec<f64>,
    pub silence_events: Vec<LogEvent>,
    pub loudness_lines: Vec<String>,
    /// (time, momentary LUFS), ten a second.
    pub momentary: Vec<(f64, f64)>,
    /// The last lines that were none of the above (errors, warnings).
    pub diagnostics: Vec<String>,
    /// A decoder said a picture's reference was missing (see
    /// [`FrameSource::missing_references`]).
    pub missing_references: bool,
    /// The sound's true peak (linear), for the process that measured the sound.
    pub true_peak: Option<f64>,
}

const MAX_DIAGNOSTICS: usize = 200;

impl Findings {
    pub fn absorb(&mut self, other: Findings) {
        self.frame_times.extend(other.frame_times);
        self.silence_events.extend(other.silence_events);
        self.loudness_lines.extend(other.loudness_lines);
        self.momentary.extend(other.momentary);
        self.diagnostics.extend(other.diagnostics);
        self.true_peak = match (self.true_peak, other.true_peak) {
            (Some(ours), Some(theirs)) => Some(ours.max(theirs)),
            (ours, theirs) => ours.or(theirs),
        };
        let excess = self.diagnostics.len().saturating_sub(MAX_DIAGNOSTICS);
        self.diagnostics.drain(..excess);
    }
}

/// Builds the command that decodes one part (the caller's filters and outputs; stdout the
/// pictures, stderr showinfo and, for the one process that has them, the audio filters).
pub type PartCommand = Box<dyn Fn(&Part) -> Command + Send>;

/// A frame's time (on its part's clock) and whether it is a keyframe, as showinfo said.
type Stamp = (f64, bool);

/// What is measured of each picture by the reader of its part, as it is read: beside the
/// other parts' decoding rather than once the parts before it have been handed out. The
/// frames are still handed out in order, but the analysis, measuring them itself, was left
/// with a backlog of the later parts' frames to measure alone once the decoders were done
/// (on the 720p H.264 minute, half of its thread's work: it ended 0.24 s after the last
/// decoder, now 0.04 s). Each part measures with its own clone of the one given, from the
/// part's first picture.
pub trait Measure: Clone + Send + 'static {
    type Of: Send + 'static;
    fn measure(&mut self, picture: &[u8]) -> Self::Of;
}

/// Nothing measured.
impl Measure for () {
    type Of = ();
    fn measure(&mut self, _: &[u8]) {}
}

/// A picture decoded (planar YUV 4:2:0), what its part's reader measured of it, its time,
/// and whether decoding can start at it.
pub struct Decoded<T> {
    pub picture: Vec<u8>,
    pub measured: T,
    pub time: f64,
    pub key: bool,
}

/// The frames of a video, in order, from one or several ffmpeg processes.
pub struct FrameSource<M: Measure> {
    command: PartCommand,
    pending: VecDeque<Part>,
    running: VecDeque<Running<M::Of>>,
    /// Parts decoding or decoded but not yet read, at most.
    window: usize,
    frame_bytes: usize,
    read_ahead: usize,
    /// The pictures the parts may hold decoded and not yet read (see [`Budget`]).
    budget: Arc<Budget>,
    /// The next part's number, in the order read.
    next_part: u64,
    /// Frames a second, to extrapolate a time showinfo did not print.
    fps: f64,
    pool: Arc<Mutex<Vec<Vec<u8>>>>,
    findings: Findings,
    /// Set when two parts did not meet (see [`FrameSource::seams_broken`]).
    seams_broken: bool,
    /// Set when a decoder said a picture's reference is missing.
    missing_reference: Arc<AtomicBool>,
    measure: M,
}

struct Running<T> {
    part: Part,
    /// Its number, in the order read.
    number: u64,
    child: Child,
    frames: mpsc::Receiver<(Vec<u8>, T, Slot)>,
    reader: JoinHandle<std::io::Result<()>>,
    times: mpsc::UnboundedReceiver<Stamp>,
    stderr: JoinHandle<Findings>,
    /// Times taken from `times` ahead of their frames (see [`FrameSource::first_times`]).
    peeked: VecDeque<Stamp>,
    /// The last frame's time, on the part's own clock.
    last: Option<f64>,
}

impl<M: Measure> FrameSource<M> {
    /// Starts the first `window` parts; each picture is measured with `measure`.
    pub fn start(
        parts: Vec<Part>,
        command: PartCommand,
        window: usize,
        (frame_bytes, read_ahead): (usize, usize),
        fps: f64,
        measure: M,
    ) -> Result<Self> {
        let (window, read_ahead) = (window.max(1), read_ahead.max(1));
        let mut source = Self {
            command,
            pending: parts.into(),
            running: VecDeque::new(),
            window,
            frame_bytes,
            read_ahead,
            budget: Arc::new(Budget::new(
                read_ahead,
                ahead_share(read_ahead, window, frame_bytes),
            )),
            next_part: 0,
            fps: if fps > 0.0 { fps } else { 25.0 },
            pool: Arc::default(),
            findings: Findings::default(),
            seams_broken: false,
            missing_reference: Arc::default(),
            measure,
        };
        source.launch()?;
        Ok(source)
    }

    /// Starts parts while fewer than `window` are decoding (a part whose frames all wait
    /// in its read-ahead decodes no more) and at most one more than `window` hold frames.
    fn launch(&mut self) -> Result<()> {
        loop {
            let decoding = self
                .running
                .iter()
                .filter(|running| !running.reader.is_finished())
                .count();
            if decoding >= self.window || self.running.len() > self.window {
                break;
            }
            let Some(part) = self.pending.pop_front() else {
                break;
            };
            let mut child = spawn((self.command)(&part))?;
            let stdout = child.stdout.take().expect("stdout is piped");
            let stderr = child.stderr.take().expect("stderr is piped");
            // room for a few pictures in the pipe itself, so ffmpeg decodes the next while
            // one is being copied out
            vidsight_media::enlarge_pipe(&stdout, 1 << 20);
            // read (and measured) on a thread of its own: the pipe blocks, the measuring
            // is work for a core
            let stdout = std::fs::File::from(stdout.into_owned_fd().map_err(|error| {
                Error::internal("cannot take the decoder's output").with_source(error)
            })?);
            // the budget bounds what the channel holds
            let (frame_sender, frames) = mpsc::channel(self.read_ahead * (self.window + 1));
            let (frame_bytes, pool) = (self.frame_bytes, self.pool.clone());
            let measure = self.measure.clone();
            let (budget, number) = (self.budget.clone(), self.next_part);
            self.next_part += 1;
            let reader = tokio::task::spawn_blocking(move || {
                let share = (number, budget.as_ref());
                read_frames(stdout, frame_bytes, frame_sender, pool, measure, share)
            });
            let (time_sender, times) = mpsc::unbounded_channel();
            let stderr = tokio::spawn(read_stderr(
                stderr,
                part.start,
                time_sender,
                self.missing_reference.clone(),
            ));
            self.running.push_back(Running {
                part,
                number,
                child,
                frames,
                reader,
                times,
                stderr,
                peeked: VecDeque::new(),
                last: None,
            });
        }
        Ok(())
    }

    /// The next frame, or `None` after the last. Give the picture back with
    /// [`FrameSource::recycle`] once measured.
    pub async fn next(&mut self) -> Result<Option<Decoded<M::Of>>> {
        if !self.pending.is_empty() {
            // a part decoded ahead may have finished: the next can start
            self.launch()?;
        }
        loop {
            let Some(current) = self.running.front_mut() else {
                return Ok(None);
            };
            if let Some((picture, measured, slot)) = current.frames.recv().await {
                self.budget.give_back(slot);
                let (time, key) = match current.peeked.pop_front() {
                    Some(time) => time,
                    None => next_frame_time(&mut current.times, current.last, self.fps).await,
                };
                // in parts, each part's frames must start at its start and run forwards
                // (trimmed to the part, a clock that jumps back shows as times that repeat)
                let split = current.part != Part::WHOLE;
                let late_start = current.last.is_none() && time > SEAM_SLACK_SECONDS;
                let backwards = current.last.is_some_and(|last| time < last - 1e-3);
                if split && (late_start || backwards) {
                    return Err(self.seam_error());
                }
                current.last = Some(time);
                return Ok(Some(Decoded {
                    picture,
                    measured,
                    time: current.part.start + time,
                    key,
                }));
            }
            let done = self.running.pop_front().expect("a part is running");
            if let Some(end) = done.part.end {
                let reached = done.last.map(|last| done.part.start + last);
                if reached.is_none_or(|reached| reached < end - SEAM_SLACK_SECONDS) {
                    return Err(self.seam_error());
                }
            }
            if let Some(next) = self.running.front() {
                self.budget.go_live(next.number);
            }
            self.finish_part(done).await?;
            self.launch()?;
        }
    }

    /// The times of the first frames decoded, up to `seconds` into the video, without
    /// taking the frames: what the decoder makes of the start of the stream. Stops early
    /// when the part ends, or when the read-ahead could not hold more (the decoder would
    /// wait for the reader).
    pub async fn first_times(&mut self, seconds: f64) -> Vec<f64> {
        let limit = self.read_ahead / 2;
        let Some(first) = self.running.front_mut() else {
            return Vec::new();
        };
        while first.peeked.len() < limit {
            match first.times.recv().await {
                Some((time, key)) => {
                    first.peeked.push_back((time, key));
                    if first.part.start + time >= seconds {
                        break;
                    }
                }
                None => break,
            }
        }
        first
            .peeked
            .iter()
            .map(|(time, _)| first.part.start + time)
            .collect()
    }

    /// True after [`FrameSource::next`] failed because a part's frames did not reach the
    /// next part's start (or began well after its own): its timestamps are not what the
    /// listing said. Decoding the video in one process avoids the seams.
    pub fn seams_broken(&self) -> bool {
        self.seams_broken
    }

    /// True once a decoder said a picture refers to one it does not have: frames that are
    /// referred to were left out (see `SkipFrames::Bidir`), or the stream is damaged.
    pub fn missing_references(&self) -> bool {
        self.missing_reference.load(Ordering::Relaxed)
    }

    fn seam_error(&mut self) -> Error {
        self.seams_broken = true;
        Error::new(
            ErrorCode::MediaToolFailed,
            "the parts of the video decoded side by side did not meet",
        )
    }

    /// Hands a picture's buffer back for the next frames.
    pub fn recycle(&self, frame: Vec<u8>) {
        if let Ok(mut pool) = self.pool.lock() {
            pool.push(frame);
        }
    }

    async fn finish_part(&mut self, mut done: Running<M::Of>) -> Result<()> {
        let read = done
            .reader
            .await
            .map_err(|error| Error::internal("frame reader failed").with_source(error))?;
        let (status, findings) = ended(&mut done.child, done.stderr).await?;
        if let Err(error) = read {
            return Err(
                Error::new(ErrorCode::MediaToolFailed, "reading decoded frames failed")
                    .with_source(error),
            );
        }
        if !status.success() {
            let error = vidsight_media::classify_failure(&findings.diagnostics.join("\n"));
            tracing::warn!(code = %error.code, exit = ?status.code(), part_start = done.part.start, "analysis pass failed");
            return Err(error);
        }
        self.findings.absorb(findings);
        Ok(())
    }

    /// Everything the processes printed, once every frame has been read.
    pub async fn finish(mut self) -> Result<Findings> {
        while let Some(done) = self.running.pop_front() {
            self.finish_part(done).await?;
        }
        self.findings.missing_references = self.missing_references();
        Ok(std::mem::take(&mut self.findings))
    }
}

/// The room (pictures) of the parts after the one being read: what `window` of them could
/// hold before they shared it, at most [`READ_AHEAD_BYTES`] (a whole part's read-ahead, see
/// [`whole_parts_ahead`], is larger than a decoder's share), never less than one part's.
fn ahead_share(read_ahead: usize, window: usize, frame_bytes: usize) -> usize {
    (read_ahead * window)
        .min(READ_AHEAD_BYTES / frame_bytes.max(1))
        .max(read_ahead)
}

impl<M: Measure> Drop for FrameSource<M> {
    /// Readers waiting for room give up (their processes are killed with them).
    fn drop(&mut self) {
        self.budget.close();
    }
}

/// The pictures decoded and not yet read, all parts together, in two shares. The part being
/// read has its own (what it holds while the analysis catches up, as the read-ahead of a
/// part always was); the parts after it share the rest, so that one decoded ahead may hold
/// all its pictures rather than its even share — with an even share the second part of
/// three stopped half-way, waiting in its read-ahead while the first was read, and a core
/// idled (the 720p H.264 40 s without B-frames: the third part then decoded alone for its
/// last 0.7 s). A reader waits for room before it reads a picture; the part being read
/// never waits on the others, so the analysis always has its next picture coming.
struct Budget {
    state: Mutex<BudgetState>,
    changed: Condvar,
}

struct BudgetState {
    /// The number of the part being read.
    live: u64,
    /// Pictures it holds of its own share, and that share.
    live_held: usize,
    live_share: usize,
    /// Room left for the parts after it.
    ahead_free: usize,
    /// Set when the frames are no longer wanted.
    closed: bool,
}

/// Which share a picture's room was taken from.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Slot {
    Live,
    Ahead,
}

impl Budget {
    fn new(live_share: usize, ahead: usize) -> Self {
        Self {
            state: Mutex::new(BudgetState {
                live: 0,
                live_held: 0,
                live_share: live_share.max(1),
                ahead_free: ahead,
                closed: false,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BudgetState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Room for one picture of part `number`, waiting until there is some; None once
    /// closed.
    fn take(&self, number: u64) -> Option<Slot> {
        let mut state = self.lock();
        loop {
            if state.closed {
                return None;
            }
            if number == state.live {
                if state.live_held < state.live_share {
                    state.live_held += 1;
                    return Some(Slot::Live);
                }
            } else if state.ahead_free > 0 {
                state.ahead_free -= 1;
                return Some(Slot::Ahead);
            }
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// A picture read (or never read): its room is free again.
    fn give_back(&self, slot: Slot) {
        let mut state = self.lock();
        match slot {
            Slot::Live => state.live_held = state.live_held.saturating_sub(1),
            Slot::Ahead => state.ahead_free += 1,
        }
        drop(state);
        self.changed.notify_all();
    }

    /// Part `number` is now the one being read (every picture of the one before has been).
    fn go_live(&self, number: u64) {
        let mut state = self.lock();
        state.live = number;
        state.live_held = 0;
        drop(state);
        self.changed.notify_all();
    }

    fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }
}

/// The process measuring the sound on its own (a video decoded in parts): started before
/// the parts are laid out, it outlives a pass started again (see `analyze`).
pub struct Sound {
    child: Child,
    stderr: JoinHandle<Findings>,
    peak: Option<crate::peak::TruePeak>,
}

impl Sound {
    /// Starts `command`, whose samples `peak` measures (see [`crate::peak::output`]).
    pub fn start(command: Command, peak: Option<crate::peak::TruePeak>) -> Result<Self> {
        let mut child = spawn(command)?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let (times, _) = mpsc::unbounded_channel();
        let stderr = tokio::spawn(read_stderr(stderr, 0.0, times, Arc::default()));
        Ok(Self {
            child,
            stderr,
            peak,
        })
    }

    /// What it printed (silences, loudness) and its true peak, once it has ended.
    pub async fn finish(mut self) -> Result<Findings> {
        let (status, mut findings) = ended(&mut self.child, self.stderr).await?;
        if let Some(peak) = self.peak {
            findings.true_peak = peak.finish().await;
        }
        if !status.success() {
            let error = vidsight_media::classify_failure(&findings.diagnostics.join("\n"));
            tracing::warn!(code = %error.code, exit = ?status.code(), "audio pass failed");
            return Err(error);
        }
        Ok(findings)
    }
}

/// A process's exit status and what the reader of its stderr made of it, once both ended.
async fn ended(
    child: &mut Child,
    stderr: JoinHandle<Findings>,
) -> Result<(std::process::ExitStatus, Findings)> {
    let status = child.wait().await.map_err(|error| {
        Error::new(ErrorCode::MediaToolFailed, "ffmpeg did not finish").with_source(error)
    })?;
    let findings = stderr
        .await
        .map_err(|error| Error::internal("stderr reader failed").with_source(error))?;
    Ok((status, findings))
}

fn spawn(mut command: Command) -> Result<Child> {
    command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|error| vidsight_media::classify_spawn_error("ffmpeg", error))
}

/// Reads whole pictures into pooled buffers, measuring each, until the end (a partial last
/// picture, from a process that died mid-write, is dropped) or until the reader is gone.
fn read_frames<M: Measure>(
    mut stdout: std::fs::File,
    frame_bytes: usize,
    sender: mpsc::Sender<(Vec<u8>, M::Of, Slot)>,
    pool: Arc<Mutex<Vec<Vec<u8>>>>,
    mut measure: M,
    (number, budget): (u64, &Budget),
) -> std::io::Result<()> {
    loop {
        // room for the picture first: the buffer is what the budget bounds
        let Some(slot) = budget.take(number) else {
            return Ok(());
        };
        let read = read_picture(&mut stdout, frame_bytes, &pool);
        let buffer = match read {
            Ok(Some(buffer)) => buffer,
            other => {
                budget.give_back(slot);
                return other.map(|_| ());
            }
        };
        let measured = measure.measure(&buffer);
        if let Err(error) = sender.blocking_send((buffer, measured, slot)) {
            budget.give_back(error.0 .2);
            return Ok(());
        }
    }
}

/// One whole picture into a pooled buffer; None at the end (a partial last picture, from a
/// process that died mid-write, is dropped).
fn read_picture(
    stdout: &mut std::fs::File,
    frame_bytes: usize,
    pool: &Mutex<Vec<Vec<u8>>>,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut buffer = pool
        .lock()
        .ok()
        .and_then(|mut pool| pool.pop())
        .unwrap_or_default();
    // read into the buffer's spare room, not zeroed first (a new buffer's pages are
    // written once, by the read)
    buffer.clear();
    buffer.reserve_exact(frame_bytes);
    while buffer.len() < frame_bytes {
        let rest = (frame_bytes - buffer.len()) as u64;
        if stdout.take(rest).read_to_end(&mut buffer)? == 0 {
            return Ok(None);
        }
    }
    Ok(Some(buffer))
}

/// Sorts out one process's stderr; each frame time (plus `offset`) also goes, in order, to
/// `times` as it is printed (the frame loop needs it as the frame arrives).
async fn read_stderr(
    stderr: tokio::process::ChildStderr,
    offset: f64,
    times: mpsc::UnboundedSender<Stamp>,
    missing_reference: Arc<AtomicBool>,
) -> Findings {
    let mut reader = BufReader::new(stderr);
    let mut findings = Findings::default();
    let mut in_summary = false;
    let mut meter_time = 0.0;
    let mut time_base = None;
    let mut raw = Vec::new();
    loop {
        raw.clear();
        match reader.read_until(b'\n', &mut raw).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&raw);
        let line = line.trim_end();
        match parse_line(line, &mut in_summary) {
            LogEvent::TimeBase(seconds) => time_base = Some(seconds),
            LogEvent::Frame { time, pts, key } => {
                let time = frame_time(time, pts, time_base);
                findings.frame_times.push(offset + time);
                let _ = times.send((time, key));
            }
            event @ (LogEvent::SilenceStart(_) | LogEvent::SilenceEnd(_)) => {
                findings.silence_events.push(event)
            }
            LogEvent::LoudnessSummary(line) => findings.loudness_lines.push(line),
            LogEvent::MeterTime(time) => meter_time = time,
            LogEvent::Momentary(lufs) => findings.momentary.push((meter_time, lufs)),
            LogEvent::Other => {
                // before its first frame a process that seeks near a time, not onto a
                // keyframe, reads pictures whose references came before it: only what it
                // says after that counts
                if !findings.frame_times.is_empty() && vidsight_media::missing_reference(line) {
                    missing_reference.store(true, Ordering::Relaxed);
                }
                if findings.diagnostics.len() >= MAX_DIAGNOSTICS {
                    findings.diagnostics.remove(0);
                }
                findings.diagnostics.push(line.to_owned());
            }
        }
    }
    findings
}

/// The timestamp of the frame just read. showinfo printed it before the frame went out, so
/// it is in the channel or on its way: it is waited for, however long the reader of the
/// process's stderr takes to be scheduled (a wall-clock limit here made the answer depend on
/// the machine's load: on a busy single-threaded runtime a check of a cut between anchors lost
/// its frames' times). When stderr closes without it (a line lost) it is extrapolated from
/// the previous one (and not taken for a keyframe); a process that stops answering is the
/// analysis timeout's business.
async fn next_frame_time(
    receiver: &mut mpsc::UnboundedReceiver<Stamp>,
    previous: Option<f64>,
    fps: f64,
) -> Stamp {
    match receiver.recv().await {
        Some(stamp) => stamp,
        None => (previous.map_or(0.0, |previous| previous + 1.0 / fps), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MP4: &str = "mov,mp4,m4a,3gp,3g2,mj2";
    // 480×270 YUV 4:2:0
    const FRAME: usize = 194_400;

    #[test]
    fn short_videos_other_containers_and_one_decoder_are_not_split() {
        assert_eq!(part_count(19.0, MP4, 2, FRAME, 30.0), 1);
        assert_eq!(part_count(600.0, "asf", 2, FRAME, 30.0), 1);
        assert_eq!(part_count(600.0, MP4, 1, FRAME, 30.0), 1);
        assert!(part_count(600.0, "mpegts", 2, FRAME, 30.0) > 1);
        assert_eq!(seeking(MP4), Seeking::Exact);
        assert_eq!(seeking("mpegts"), Seeking::Near);
        assert_eq!(seeking("mpeg"), Seeking::Near);
        assert_eq!(seeking("avi"), Seeking::Near);
        assert_eq!(seeking("flv"), Seeking::Near);
        assert_eq!(seeking("asf"), Seeking::None);
        assert_eq!(part_count(f64::NAN, MP4, 2, FRAME, 30.0), 1);
        // a header that claims a trillion seconds
        assert_eq!(part_count(1e12, MP4, 2, FRAME, 30.0), MAX_PARTS);
        assert_eq!(part_count(f64::INFINITY, MP4, 2, FRAME, 30.0), MAX_PARTS);
        assert!(part_count(600.0, "matroska,webm", 2, FRAME, 30.0) > 1);
    }

    #[test]
    fn a_video_in_as_many_parts_as_decoders_reads_a_whole_part_ahead() {
        let frame = crate::frames::yuv420_len(480, 270);
        let usual = read_ahead_frames(2, frame);
        let halves = parts_at(&[30.0], 0.0);
        // a minute at 30 fps, anchors three frames in eight: 338 of a half (and one for the
        // rounding), more than the usual 258
        let anchors = 30.0 * 0.375;
        let ahead = whole_parts_ahead(&halves, 60.0, anchors, 2, frame);
        assert_eq!(ahead, Some(339));
        assert!(usual < 338);
        // every frame: as many as 80 MiB hold
        let every = whole_parts_ahead(&halves, 60.0, 30.0, 2, frame).unwrap();
        assert_eq!(every, WHOLE_PART_BYTES / frame);
        assert!(every < 900);
        // more parts than decoders, or one: the usual share
        let thirds = parts_at(&[20.0, 40.0], 0.0);
        assert_eq!(whole_parts_ahead(&thirds, 60.0, anchors, 2, frame), None);
        assert_eq!(
            whole_parts_ahead(&[Part::WHOLE], 60.0, 30.0, 2, frame),
            None
        );
        // parts the usual share already holds
        let halves = parts_at(&[12.0], 0.0);
        assert_eq!(whole_parts_ahead(&halves, 24.0, anchors, 2, frame), None);
    }

    #[test]
    fn parts_are_one_per_decoder_at_least_and_fit_the_read_ahead() {
        // a minute of every frame: four parts of 15 s (258 pictures hold half of 17 s)
        assert_eq!(part_count(60.0, MP4, 2, FRAME, 30.0), 4);
        // of anchors only (a quarter of the frames): one part per decoder
        assert_eq!(part_count(60.0, MP4, 2, FRAME, 7.5), 2);
        assert_eq!(part_count(60.0, MP4, 4, FRAME, 7.5), 4);
        // none under 6 s
        assert_eq!(part_count(21.0, MP4, 2, FRAME, 30.0), 2);
        assert_eq!(part_count(21.0, MP4, 4, FRAME, 30.0), 3);
        // an hour: each part's read-ahead (48 MiB, 258 pictures) holds half of it
        let count = part_count(3600.0, MP4, 2, FRAME, 30.0);
        let frames_per_part = 3600.0 * 30.0 / count as f64;
        assert!(frames_per_part <= 2.0 * read_ahead_frames(2, FRAME) as f64);
        assert!(frames_per_part > read_ahead_frames(2, FRAME) as f64);
        // fewer pictures a second (frames skipped): longer parts
        assert!(part_count(3600.0, MP4, 2, FRAME, 16.0) < count);
    }

    /// A part whose process makes `seconds` of 16×16 pictures at 10 a second, from `from`
    /// on its own clock.
    fn lavfi_part(seconds: f64, from: f64) -> Command {
        let mut command = Command::new("ffmpeg");
        command
            .args(["-hide_banner", "-nostdin", "-nostats", "-loglevel", "info"])
            .args(["-f", "lavfi", "-i"])
            .arg(format!(
                "testsrc2=size=16x16:rate=10:duration={seconds},setpts=PTS+{from}/TB,\
                 format=yuv420p,showinfo=checksum=0"
            ))
            .args(["-fps_mode", "passthrough", "-f", "rawvideo", "pipe:1"]);
        command
    }

    async fn read_all(parts: Vec<Part>, command: PartCommand) -> (Result<usize>, bool) {
        let mut source = FrameSource::start(parts, command, 2, (384, 64), 10.0, ()).unwrap();
        let mut frames = 0;
        loop {
            match source.next().await {
                Ok(Some(_)) => frames += 1,
                Ok(None) => return (Ok(frames), source.seams_broken()),
                Err(error) => return (Err(error), source.seams_broken()),
            }
        }
    }

    #[tokio::test]
    async fn parts_that_do_not_meet_are_reported() {
        let parts = vec![
            Part {
                start: 0.0,
                end: Some(5.0),
                lead: 0.0,
            },
            Part {
                start: 5.0,
                end: None,
                lead: 0.0,
            },
        ];
        // parts that tile: 50 + 30 frames
        let tiled: PartCommand =
            Box::new(|part: &Part| lavfi_part(if part.start == 0.0 { 5.0 } else { 3.0 }, 0.0));
        let (frames, broken) = read_all(parts.clone(), tiled).await;
        assert_eq!((frames.unwrap(), broken), (80, false));
        // the first part stops 3 s short of the second's start
        let short: PartCommand = Box::new(|_: &Part| lavfi_part(2.0, 0.0));
        let (frames, broken) = read_all(parts.clone(), short).await;
        assert!(frames.is_err() && broken);
        // the second part's first frame comes 3 s after its start
        let late: PartCommand = Box::new(|part: &Part| {
            if part.start == 0.0 {
                lavfi_part(5.0, 0.0)
            } else {
                lavfi_part(2.0, 3.0)
            }
        });
        let (frames, broken) = read_all(parts.clone(), late).await;
        assert!(frames.is_err() && broken);
        // one process: no seams to check
        let whole: PartCommand = Box::new(|_: &Part| lavfi_part(2.0, 3.0));
        let (frames, broken) = read_all(vec![Part::WHOLE], whole).await;
        assert_eq!((frames.unwrap(), broken), (20, false));
    }

    /// Numbers the pictures of its part, and keeps each one's first byte.
    #[derive(Clone, Default)]
    struct Count(usize);

    impl Measure for Count {
        type Of = (usize, u8);
        fn measure(&mut self, picture: &[u8]) -> (usize, u8) {
            self.0 += 1;
            (self.0 - 1, picture[0])
        }
    }

    #[tokio::test]
    async fn each_part_measures_its_own_pictures_from_its_first() {
        // three parts of 30, 30 and 20 frames, two decoding at a time: the later parts'
        // pictures are measured as they are read, before their turn comes
        let parts = parts_at(&[3.0, 6.0], 0.0);
        assert_eq!(parts.len(), 3);
        let command: PartCommand = Box::new(|part: &Part| {
            let seconds = part.end.unwrap_or(8.0) - part.start;
            lavfi_part(seconds, 0.0)
        });
        let mut source = FrameSource::start(parts, command, 2, (384, 64), 10.0, Count(0)).unwrap();
        let mut seen = Vec::new();
        while let Some(frame) = source.next().await.unwrap() {
            // what was measured is of the picture it comes with
            assert_eq!(frame.measured.1, frame.picture[0]);
            seen.push((frame.time, frame.measured.0));
            source.recycle(frame.picture);
        }
        source.finish().await.unwrap();
        assert_eq!(seen.len(), 80);
        for (index, (time, counted)) in seen.iter().enumerate() {
            let first_of_part = [0, 30, 60].iter().rev().find(|start| **start <= index);
            assert_eq!(
                *counted,
                index - first_of_part.unwrap(),
                "frame {index} at {time}"
            );
        }
    }

    #[tokio::test]
    async fn a_part_read_ahead_holds_all_its_pictures_while_the_first_is_read() {
        // a share of 8 pictures for the part being read, 16 for the parts after it: the
        // second part (12 pictures) decodes to its end while the first (30) waits, unread
        let part = |start: f64, end: Option<f64>| Part {
            start,
            end,
            lead: 0.0,
        };
        let parts = vec![part(0.0, Some(3.0)), part(3.0, Some(4.2)), part(4.2, None)];
        let command: PartCommand = Box::new(|part: &Part| {
            let seconds = part.end.unwrap_or(8.0) - part.start;
            lavfi_part(seconds, 0.0)
        });
        let mut source = FrameSource::start(parts, command, 2, (384, 8), 10.0, ()).unwrap();
        let first = source.next().await.unwrap().unwrap();
        source.recycle(first.picture);
        let waited = std::time::Instant::now();
        while !source.running[1].reader.is_finished() {
            assert!(
                waited.elapsed() < std::time::Duration::from_secs(60),
                "the second part stopped before its end"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let mut times = vec![first.time];
        while let Some(frame) = source.next().await.unwrap() {
            times.push(frame.time);
            source.recycle(frame.picture);
        }
        source.finish().await.unwrap();
        assert_eq!(times.len(), 80);
        assert!(times.windows(2).all(|pair| pair[0] < pair[1]), "{times:?}");
    }

    #[test]
    fn the_part_being_read_never_waits_on_the_parts_ahead() {
        use std::sync::mpsc::channel;
        use std::time::Duration;
        let budget = Arc::new(Budget::new(2, 3));
        // the parts ahead take all their room
        for _ in 0..3 {
            assert_eq!(budget.take(1), Some(Slot::Ahead));
        }
        // the part being read still has its own
        assert_eq!(budget.take(0), Some(Slot::Live));
        assert_eq!(budget.take(0), Some(Slot::Live));
        // a part ahead waits until a picture is read
        let (sender, taken) = channel();
        let waiting = budget.clone();
        let ahead = std::thread::spawn(move || sender.send(waiting.take(2)).unwrap());
        assert!(taken.recv_timeout(Duration::from_millis(100)).is_err());
        budget.give_back(Slot::Ahead);
        assert_eq!(
            taken.recv_timeout(Duration::from_secs(10)).unwrap(),
            Some(Slot::Ahead)
        );
        ahead.join().unwrap();
        // one waiting for room ahead takes its own share once its turn comes
        let (sender, taken) = channel();
        let waiting = budget.clone();
        let next = std::thread::spawn(move || sender.send(waiting.take(1)).unwrap());
        assert!(taken.recv_timeout(Duration::from_millis(100)).is_err());
        budget.go_live(1);
        assert_eq!(
            taken.recv_timeout(Duration::from_secs(10)).unwrap(),
            Some(Slot::Live)
        );
        next.join().unwrap();
        // closed, a waiting reader gives up
        assert_eq!(budget.take(1), Some(Slot::Live));
        let (sender, taken) = channel();
        let waiting = budget.clone();
        let last = std::thread::spawn(move || sender.send(waiting.take(1)).unwrap());
        assert!(taken.recv_timeout(Duration::from_millis(100)).is_err());
        budget.close();
        assert_eq!(taken.recv_timeout(Duration::from_secs(10)).unwrap(), None);
        last.join().unwrap();
    }

    #[test]
    fn parts_start_at_keyframes_and_leave_out_close_ones() {
        assert_eq!(split_targets(60.0, 4), vec![15.0, 30.0, 45.0]);
        let parts = parts_at(&[11.27, 28.73, 28.73, 31.0, 41.53], 0.0);
        let starts: Vec<f64> = parts.iter().map(|part| part.start).collect();
        assert_eq!(starts, vec![0.0, 11.27, 28.73, 41.53]);
        assert_eq!(parts[0].end, Some(11.27));
        assert_eq!(parts[2].end, Some(41.53));
        assert_eq!(parts[3].end, None);
        // no keyframe found (or only the first): one part
        assert_eq!(parts_at(&[], 0.0), vec![Part::WHOLE]);
        assert_eq!(parts_at(&[0.0], 0.0), vec![Part::WHOLE]);
        // without an index each process seeks a little earlier
        let near = parts_at(&[11.27, 28.73], NEAR_SEEK_LEAD);
        assert!(near.iter().all(|part| part.lead == NEAR_SEEK_LEAD));
        assert_eq!(near[1].start, 11.27);
        assert_eq!(parts_at(&[1.0], NEAR_SEEK_LEAD), vec![Part::WHOLE]);
    }

    #[test]
    fn fewer_parts_start_at_the_keyframes_nearest_even_cuts() {
        // laid out for six parts of a minute, keyframes near every 10 s
        let six = parts_at(&[9.8, 20.3, 29.1, 41.0, 50.2], NEAR_SEEK_LEAD);
        assert_eq!(six.len(), 6);
        let three = fewer_parts(six.clone(), 3, 60.0);
        let starts: Vec<f64> = three.iter().map(|part| part.start).collect();
        assert_eq!(starts, vec![0.0, 20.3, 41.0]);
        assert_eq!(three[0].end, Some(20.3));
        assert_eq!(three[1].end, Some(41.0));
        assert_eq!(three[2].end, None);
        assert!(three.iter().all(|part| part.lead == NEAR_SEEK_LEAD));
        // two targets nearest one keyframe keep it once
        let two = fewer_parts(parts_at(&[29.1, 50.2], 0.0), 2, 60.0);
        assert_eq!(
            two.iter().map(|part| part.start).collect::<Vec<_>>(),
            vec![0.0, 29.1]
        );
        // as many or more wanted, or one: as they were, or whole
        assert_eq!(fewer_parts(six.clone(), 6, 60.0), six);
        assert_eq!(fewer_parts(six.clone(), 9, 60.0), six);
        assert_eq!(fewer_parts(six, 1, 60.0), vec![Part::WHOLE]);
    }
}
