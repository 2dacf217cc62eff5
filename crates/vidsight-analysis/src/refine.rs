//! Cuts between anchors, checked and placed on their frame.
//!
//! Decoding only the anchors (I- and P-frames, see `decode`) leaves up to three frames out
//! between two decoded ones. A cut found between them may be on any of those (the detectors
//! see the change on the first anchor after it), and a change that looks like a cut over
//! four frames may be no cut at all: the last frames of a dissolve, or fast motion, changes
//! spread over the frames between. Each such stretch is decoded again from the anchor before
//! to the anchor the cut was seen on (ffmpeg seeks to the keyframe before and decodes from
//! there, so a stretch costs what its distance from that keyframe costs), leaving out only the
//! frames nothing refers to (about half the decoding of the frames on the way; every frame
//! when that leaves more than one out in a row, as without a B-pyramid). A cut makes most of
//! the change across the stretch in one step, and stands out of the others: it is put on that
//! step's frame (within one frame, as when the whole video is decoded so). A change spread
//! over the steps (a dissolve's end), or one every step makes alike (noise), is not a cut, and
//! is dropped.
//!
//! The stretch's process starts where the pass's decoding of it could: at the last keyframe
//! before it (seeking in an index lands there; seeking near a time, as in MPEG-TS, lands
//! [`CLOSE_LEAD`] before that keyframe, or [`Refiner::lead`] when that landed after it; an
//! AVI's index, whose times run late, is asked for [`AVI_PAST`] after it).
//!
//! A stretch is decoded as soon as the pass decides its cut, one process at a time beside the
//! pass's (see [`Checks`]), as many as there are decoders once it is over; the stretches found
//! while a process runs are decoded together by the next, one input each, or one for those
//! after the same keyframe (starting a process costs about what decoding a stretch does, and
//! a stretch what decoding from its keyframe does); at most a number of them per minute of video
//! (a stream with few keyframes and many cuts could otherwise cost more than the pass it
//! refines; a count, not a time, so the answer does not depend on the machine's load): a cut
//! whose stretch is not decoded, or cannot be (no frame where its anchor should be), stays as
//! the pass found it, on its anchor, at most three frames late.
use crate::frames::HsvFrame;
use crate::logparse::{self, LogEvent};
use crate::source::Part;
use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;
use tokio::task::JoinSet;
use vidsight_media::SkipFrames;

/// A cut seen on the anchor at `at` (frame `frame` of those decoded), the frame decoded
/// before it at `before`, more than two frames earlier; `keyframe`: the last keyframe the
/// pass decoded at or before `before` (where decoding the stretch starts).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gap {
    pub frame: u64,
    pub before: f64,
    pub at: f64,
    pub keyframe: Option<f64>,
}

/// What decoding a stretch again found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Placed {
    /// The cut is on the frame at this time.
    At(f64),
    /// The change is spread over the stretch: no cut.
    NotACut,
}

/// Frames more than this many frame durations apart leave room for a cut to be misplaced
/// by more than one frame.
pub const MAX_ALIGNED_SPAN: f64 = 2.5;

/// The share of the change across a stretch a cut's one step makes at least. A dissolve's
/// steps make about as much each (a half over two steps, a quarter over four); a cut's,
/// all of it but what motion adds.
pub const CUT_SHARE: f64 = 0.7;

/// How many times any other step of the stretch a cut's step is at least. Where the picture
/// changes all over from frame to frame (a field of noise, water, confetti), the change
/// saturates: the stretch's first and last frames differ no more than two neighbours do,
/// and every step would make "the whole change". Such steps are within a few per cent of
/// each other (44.1 to 44.5 over two frames of a cellular automaton's noise, 26.4 to 27.3
/// over one); a cut into that noise stood out of the noise's own steps by 1.23 to 2.6 times
/// over the 18 random fields whose steps were printed.
pub const STANDS_OUT: f64 = 1.1;

/// Seconds before its keyframe a stretch's process first seeks to where seeking lands only
/// near a time. The timestamp search of an MPEG-TS lands on the keyframe at or before the
/// time asked (20 keyframes of an MPEG-2 TS, asked for 0 to 0.1 s early: each time on it);
/// a second early, as the pass's parts seek, decoded two GOPs more, and stretches cost 40 %
/// more. A stretch whose process landed after its keyframe (its first frame is not the
/// anchor) is decoded again from [`Refiner::lead`] before it.
pub const CLOSE_LEAD: f64 = 0.25;

/// Frames after its keyframe an AVI stretch's process seeks to. AVI's index lands on the
/// keyframe at or before the time asked, but its times are the decoding order's, later than
/// the keyframe's presentation time where B-frames are held back: asked for the keyframe's
/// own time it landed on the keyframe before (a GOP more to decode), asked for
/// [`CLOSE_LEAD`] before it, often two back. Half a frame after lands on it (stretches of
/// an MPEG-4 Part 2 AVI: 0.72 → 0.60 s of CPU, the same cuts).
pub const AVI_PAST: f64 = 0.5;

/// Stretches one process decodes at most. A process costs about what decoding a stretch
/// does (see `stretches_command` in the crate root); the pictures of a batch's later
/// stretches wait in its filter graph until the earlier ones are out (a few frames each).
pub const MAX_BATCH: usize = 12;
/// Stretches that wait before a process is started for them while the pass goes on (each
/// process costs about as much to start as four stretches cost to decode; what is left
/// waits for the end of the pass). Six, not four: the 720p MPEG-2 TS minute's 23 checks
/// took three processes instead of five, 2.27 → 2.06 s of CPU in ffmpeg.
pub const EARLY_BATCH: usize = 6;

/// Frames a stretch brings at most (it is a few frames; more is a stream whose timestamps
/// are not what the pass saw): a process that writes more is given up.
const MAX_STRETCH_FRAMES: usize = 32;

/// An ffmpeg decoding spans (scaled like the pass), each an input of its own, leaving out
/// the frames given: the pictures kept of the first span, then of the second, … on stdout;
/// each span's frame times from a showinfo named `showinfo@sN` on stderr.
/// The last argument: whether each input's stream probe may be brief (see
/// [`Refiner::decode`]).
pub type StretchesCommand = Box<dyn Fn(&[Span], SkipFrames, bool) -> Command + Send + Sync>;

/// The colour signature the detectors compare frames by, of a picture.
pub type Measure = Box<dyn Fn(&[u8]) -> HsvFrame + Send + Sync>;

/// How the stretches are decoded and measured.
pub struct Refiner {
    pub command: StretchesCommand,
    /// Seconds before the keyframe a stretch is decoded from that its process seeks to,
    /// where seeking lands only near a time (see [`Part::lead`]); 0 where it lands on the
    /// keyframe before it.
    pub lead: f64,
    /// The same, the first time a stretch is decoded (less than `lead`, or equal: 0 where
    /// an index lands on the keyframe; negative: after the keyframe, where the index's times
    /// run late).
    pub close_lead: f64,
    /// What a stretch is first decoded leaving out: the frames nothing refers to, or none
    /// where that is every B-frame (MPEG-2's, two in a row, would be left out again).
    pub first_skip: SkipFrames,
    /// Processes side by side.
    pub decoders: usize,
    pub frame_bytes: usize,
    pub fps: f64,
    pub measure: Measure,
}

/// A stretch decoded again: each frame's time after its first and its change from the frame
/// before, and the change from its first frame to its last.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stretch {
    pub steps: Vec<(f64, f64)>,
    pub across: f64,
}

impl Refiner {
    /// What the stretches of `gaps` show, by each gap's `frame` (none for a stretch that
    /// could not be decoded).
    pub async fn place(self: Arc<Self>, gaps: Vec<Gap>) -> Vec<(u64, Placed)> {
        let close = self.close_lead.min(self.lead);
        let mut stretches = self.decode(&gaps, self.first_skip, close).await;
        if close < self.lead {
            // a process that landed after the keyframe (its first frame is not the anchor):
            // again, from further back
            let missed = (0..gaps.len()).filter(|index| stretches[*index].is_none());
            let missed: Vec<usize> = missed.collect();
            self.again(&gaps, &mut stretches, missed, self.first_skip, self.lead)
                .await;
        }
        if self.first_skip != SkipFrames::None {
            // a stretch that left out more than one frame in a row (no B-pyramid), again
            // with every frame
            let sparse = (0..gaps.len()).filter(|index| {
                stretches[*index]
                    .as_ref()
                    .is_some_and(|found| most_left_out(&found.steps, gaps[*index], self.fps) > 1)
            });
            let sparse: Vec<usize> = sparse.collect();
            self.again(&gaps, &mut stretches, sparse, SkipFrames::None, self.lead)
                .await;
        }
        gaps.iter()
            .zip(&stretches)
            .filter_map(|(gap, stretch)| {
                Some((gap.frame, verdict(stretch.as_ref()?, *gap, self.fps)?))
            })
            .collect()
    }

    /// Decodes the stretches of the gaps at `which` again, so.
    async fn again(
        &self,
        gaps: &[Gap],
        stretches: &mut [Option<Stretch>],
        which: Vec<usize>,
        skip: SkipFrames,
        lead: f64,
    ) {
        if which.is_empty() {
            return;
        }
        let those: Vec<Gap> = which.iter().map(|index| gaps[*index]).collect();
        let decoded = self.decode(&those, skip, lead).await;
        for (index, stretch) in which.into_iter().zip(decoded) {
            stretches[index] = stretch;
        }
    }

    /// The stretches of `gaps`, decoded by one process; where that fails as a whole, again
    /// with each input's stream probed in full, then each by a process of its own (a
    /// stretch that cannot be decoded costs the others nothing). The first process probes
    /// each input briefly: the pass has already opened the file, and a full probe reads
    /// and decodes its start again for every input (MPEG-TS: 3.5 ms a stretch, a batch of
    /// six 0.167 → 0.145 s of CPU); a stream whose parameters come later than the brief
    /// probe looks is decoded by the second.
    async fn decode(&self, gaps: &[Gap], skip: SkipFrames, lead: f64) -> Vec<Option<Stretch>> {
        for brief in [true, false] {
            if let Some(stretches) = self.decode_together(gaps, skip, lead, brief).await {
                return stretches;
            }
        }
        if gaps.len() == 1 {
            return vec![None];
        }
        let mut stretches = Vec::with_capacity(gaps.len());
        for gap in gaps {
            let alone = self
                .decode_together(std::slice::from_ref(gap), skip, lead, false)
                .await;
            stretches.push(alone.and_then(|mut one| one.pop()).flatten());
        }
        stretches
    }

    /// The stretches of `gaps` decoded by one process (None for a stretch that does not
    /// start on the anchor the pass decoded); None when the process failed, or what it
    /// wrote does not add up.
    pub(crate) async fn decode_together(
        &self,
        gaps: &[Gap],
        skip: SkipFrames,
        lead: f64,
        brief: bool,
    ) -> Option<Vec<Option<Stretch>>> {
        let half_frame = 0.5 / self.fps.max(1.0);
        // where a span's decoding ends, past its last anchor: ffmpeg's `trim` rounds its end
        // to the stream's time base, a frame's length in AVI, where half a frame (less the
        // half millisecond `part_input` takes off) rounded onto the anchor and cut it off, as
        // if the cut were on no frame; three quarters round past it (the frames kept are
        // told by their times, below)
        let past = 1.5 * half_frame;
        // stretches after the same keyframe, one after the other, are one input: decoded
        // from that keyframe once (a stream whose keyframes are seconds apart has several
        // cuts between two), only their own frames kept
        let mut spans: Vec<(Span, Vec<usize>)> = Vec::new();
        for (index, gap) in gaps.iter().enumerate() {
            if let Some((span, members)) = spans.last_mut() {
                let last = &gaps[*members.last().expect("a span has a stretch")];
                if gap.keyframe.is_some() && gap.keyframe == last.keyframe && gap.before > last.at {
                    span.part.end = Some(gap.at + past);
                    let from = gap.before - span.part.start;
                    span.keep
                        .push((from - half_frame, gap.at - span.part.start + half_frame));
                    members.push(index);
                    continue;
                }
            }
            let part = Part {
                start: gap.before,
                end: Some(gap.at + past),
                // near a time, the process must land before the keyframe, not only before
                // the stretch (an MPEG-TS whose keyframes are two seconds apart lost most of
                // its checks): it decodes from there, as it would from an index's keyframe
                lead: match gap.keyframe {
                    Some(keyframe) if lead != 0.0 => lead + (gap.before - keyframe).max(0.0),
                    _ => lead,
                },
            };
            let keep = vec![(-half_frame, gap.at - gap.before + half_frame)];
            spans.push((Span { part, keep }, vec![index]));
        }
        let inputs: Vec<Span> = spans.iter().map(|(span, _)| span.clone()).collect();
        let mut command = (self.command)(&inputs, skip, brief);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().ok()?;
        let (stdout, stderr) = (child.stdout.take()?, child.stderr.take()?);
        let limit = (gaps.len() * MAX_STRETCH_FRAMES * self.frame_bytes) as u64;
        // the pictures are read whole (a batch is a few frames a stretch); past the limit
        // the pipe is closed, and ffmpeg ends
        let pictures = async move {
            let mut pictures = Vec::new();
            stdout
                .take(limit + 1)
                .read_to_end(&mut pictures)
                .await
                .map(|_| pictures)
        };
        let (pictures, times) = tokio::join!(pictures, stretch_times(stderr, inputs.len()));
        let pictures = pictures.ok().filter(|read| read.len() as u64 <= limit)?;
        if !child.wait().await.ok()?.success() {
            return None;
        }
        let decoded: usize = times.iter().map(Vec::len).sum();
        if pictures.len() != decoded * self.frame_bytes {
            return None;
        }
        let mut pictures = pictures.chunks_exact(self.frame_bytes);
        let mut stretches = vec![None; gaps.len()];
        for ((span, members), times) in spans.iter().zip(times) {
            // each frame measured once, on the file's clock
            let mut measured = Vec::with_capacity(times.len());
            for time in times {
                let picture = pictures.next()?;
                measured.push((span.part.start + time, (self.measure)(picture)));
            }
            for index in members {
                let gap = gaps[*index];
                let inside = measured.iter().filter(|(time, _)| {
                    *time > gap.before - half_frame && *time < gap.at + half_frame
                });
                stretches[*index] = stretch_of(gap, inside, half_frame);
            }
        }
        Some(stretches)
    }
}

/// Part of the video one input of a check's process decodes, and the windows of it (on the
/// part's clock, from its start) whose frames it keeps: one stretch's, or several after the
/// same keyframe.
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    pub part: Part,
    pub keep: Vec<(f64, f64)>,
}

/// The stretch of `gap` from its frames (time, signature), in order; None when the first is
/// not the anchor the pass decoded.
fn stretch_of<'a>(
    gap: Gap,
    frames: impl Iterator<Item = &'a (f64, HsvFrame)>,
    half_frame: f64,
) -> Option<Stretch> {
    let (mut first, mut previous): (Option<&HsvFrame>, Option<&HsvFrame>) = (None, None);
    let mut stretch = Stretch::default();
    for (time, current) in frames {
        match previous {
            None if (time - gap.before).abs() > half_frame => return None,
            None => first = Some(current),
            Some(previous) => stretch.steps.push((*time, current.difference(previous))),
        }
        previous = Some(current);
    }
    stretch.across = first?.difference(previous?);
    Some(stretch)
}

/// Each stretch's frame times (on its part's clock), from the stderr of a process that
/// decodes `count` of them: the lines of the showinfo named `showinfo@sN` are stretch N's.
async fn stretch_times(stderr: tokio::process::ChildStderr, count: usize) -> Vec<Vec<f64>> {
    let mut times = vec![Vec::new(); count];
    let mut time_bases = vec![None; count];
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let Some(index) = stretch_index(&line).filter(|index| *index < count) else {
            continue;
        };
        match logparse::parse_line(&line, &mut false) {
            LogEvent::TimeBase(time_base) => time_bases[index] = Some(time_base),
            LogEvent::Frame { time, pts, .. } => {
                times[index].push(logparse::frame_time(time, pts, time_bases[index]))
            }
            _ => {}
        }
    }
    times
}

/// N, for a line of the showinfo named `showinfo@sN`.
fn stretch_index(line: &str) -> Option<usize> {
    const NAME: &str = "[showinfo@s";
    let rest = &line[line.find(NAME)? + NAME.len()..];
    let digits = rest.find(|character: char| !character.is_ascii_digit())?;
    rest[..digits].parse().ok()
}

/// Stretches decoded while the pass goes on, as its cuts are found: one process at a time
/// beside the pass's (the pass's last parts leave cores idle, and the checks fill them),
/// started once [`EARLY_BATCH`] stretches wait, and `decoders` once the pass is over for the
/// rest; a process decodes the stretches waiting together (at most [`MAX_BATCH`]); at most
/// `most` stretches, the first found.
pub struct Checks {
    refiner: Arc<Refiner>,
    waiting: Vec<Gap>,
    running: JoinSet<Vec<(u64, Placed)>>,
    /// Processes at a time.
    slots: usize,
    /// Stretches waiting before a process starts.
    batch: usize,
    placed: HashMap<u64, Placed>,
    started: usize,
    most: usize,
}

impl Checks {
    pub fn new(refiner: Refiner, most: usize) -> Self {
        Self {
            refiner: Arc::new(refiner),
            waiting: Vec::new(),
            running: JoinSet::new(),
            slots: 1,
            batch: EARLY_BATCH,
            placed: HashMap::new(),
            started: 0,
            most,
        }
    }

    /// Checks `gap` (nothing past the most allowed), with the next process to start.
    pub fn start(&mut self, gap: Gap) {
        if self.started >= self.most {
            return;
        }
        self.started += 1;
        self.waiting.push(gap);
        self.tick();
    }

    /// Processes running.
    #[cfg(test)]
    pub fn processes(&self) -> usize {
        self.running.len()
    }

    /// Takes what the processes that ended found, and starts the stretches waiting where a
    /// process may run: the pass calls this as it goes.
    pub fn tick(&mut self) {
        while let Some(ended) = self.running.try_join_next() {
            if let Ok(found) = ended {
                self.placed.extend(found);
            }
        }
        self.launch();
    }

    /// Shares the stretches waiting among the processes that may start.
    fn launch(&mut self) {
        while self.running.len() < self.slots && self.waiting.len() >= self.batch.max(1) {
            let free = self.slots - self.running.len();
            let size = self.waiting.len().div_ceil(free).min(MAX_BATCH);
            let batch: Vec<Gap> = self.waiting.drain(..size).collect();
            let refiner = self.refiner.clone();
            self.running.spawn(refiner.place(batch));
        }
    }

    /// What every stretch showed, the pass being over (dropped unfinished, the checks stop
    /// and their processes are killed).
    pub async fn finish(mut self) -> HashMap<u64, Placed> {
        self.slots = self.refiner.decoders.max(1);
        self.batch = 1;
        loop {
            self.launch();
            match self.running.join_next().await {
                Some(Ok(found)) => self.placed.extend(found),
                Some(Err(_)) => {}
                None => break,
            }
        }
        self.placed
    }
}

/// The most frames left out in a row between the frames decoded in the stretch.
pub fn most_left_out(steps: &[(f64, f64)], gap: Gap, fps: f64) -> usize {
    let mut times = vec![gap.before];
    times.extend(steps.iter().map(|(time, _)| *time));
    times
        .windows(2)
        .map(|pair| ((pair[1] - pair[0]) * fps - 1.0).round().max(0.0) as usize)
        .max()
        .unwrap_or(0)
}

/// A cut on the frame with the largest change in (`gap.before`, `gap.at`] when that one
/// step makes [`CUT_SHARE`] of the change across the stretch and [`STANDS_OUT`] times any
/// other step's, else no cut; None when no frame of the stretch is there (`fps`: the
/// stream's, to tell how many frames each step spans).
pub fn verdict(stretch: &Stretch, gap: Gap, fps: f64) -> Option<Placed> {
    let (time, largest) = strongest_change(&stretch.steps, gap)?;
    let fps = fps.max(1.0);
    let mut previous = gap.before;
    let spans: Vec<f64> = stretch
        .steps
        .iter()
        .map(|(time, _)| {
            let span = ((time - previous) * fps).round().max(1.0);
            previous = *time;
            span
        })
        .collect();
    let largest_span = stretch
        .steps
        .iter()
        .zip(&spans)
        .find(|((at, _), _)| *at == time)
        .map_or(1.0, |(_, span)| *span);
    // a step over more frames than another may change more with motion alone (weighed as
    // the detector weighs its neighbours, see `boundaries`)
    let stands_out = stretch
        .steps
        .iter()
        .zip(&spans)
        .filter(|((at, _), _)| *at != time)
        .all(|((_, score), span)| {
            largest >= STANDS_OUT * score * (largest_span / span).max(1.0).sqrt()
        });
    Some(if largest < CUT_SHARE * stretch.across || !stands_out {
        Placed::NotACut
    } else {
        Placed::At(time)
    })
}

/// The time and size of the largest change in (`gap.before`, `gap.at`].
fn strongest_change(steps: &[(f64, f64)], gap: Gap) -> Option<(f64, f64)> {
    // half a millisecond: times printed to the microsecond
    let epsilon = 5e-4;
    steps
        .iter()
        .copied()
        .filter(|(time, _)| *time > gap.before + epsilon && *time < gap.at + epsilon)
        .fold(None, |best: Option<(f64, f64)>, (time, score)| match best {
            Some((_, top)) if top >= score => best,
            _ => Some((time, score)),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FPS: f64 = 30.0;
    const GAP: Gap = Gap {
        frame: 7,
        before: 1.0,
        at: 1.1333,
        keyframe: None,
    };

    fn stretch(steps: &[(f64, f64)], across: f64) -> Stretch {
        Stretch {
            steps: steps.to_vec(),
            across,
        }
    }

    #[test]
    fn the_cut_goes_on_the_largest_change_inside_the_stretch() {
        // frames at 1.0333, 1.0667, 1.1 and the anchor 1.1333: the cut is at 1.0667
        let cut = stretch(
            &[(1.0333, 2.0), (1.0667, 40.0), (1.1, 3.0), (1.1333, 1.0)],
            42.0,
        );
        assert_eq!(verdict(&cut, GAP, FPS), Some(Placed::At(1.0667)));
        // on the anchor itself when that is where the change is
        let on_anchor = stretch(
            &[(1.0333, 2.0), (1.0667, 1.0), (1.1, 3.0), (1.1333, 50.0)],
            51.0,
        );
        assert_eq!(verdict(&on_anchor, GAP, FPS), Some(Placed::At(1.1333)));
        // frames outside the stretch do not count; none inside, no answer
        assert_eq!(
            verdict(&stretch(&[(0.9, 90.0), (1.2, 90.0)], 90.0), GAP, FPS),
            None
        );
        assert_eq!(verdict(&Stretch::default(), GAP, FPS), None);
    }

    #[test]
    fn a_change_spread_over_the_stretch_is_no_cut() {
        // the end of a dissolve: four steps of about a quarter each
        let dissolve = stretch(
            &[(1.0333, 9.0), (1.0667, 10.0), (1.1, 9.5), (1.1333, 9.0)],
            37.0,
        );
        assert_eq!(verdict(&dissolve, GAP, FPS), Some(Placed::NotACut));
        // two steps (a pyramid's reference B-frame between): half each
        let two = stretch(&[(1.0667, 20.0), (1.1333, 19.0)], 38.0);
        assert_eq!(verdict(&two, GAP, FPS), Some(Placed::NotACut));
    }

    #[test]
    fn a_change_that_saturates_is_no_cut() {
        // cellular automaton noise at 25 fps (an x264 stream of it decoded without its
        // non-reference frames): each step of two frames differs as much as the first and last
        let gap = Gap {
            frame: 265,
            before: 19.08,
            at: 19.24,
            keyframe: Some(18.0),
        };
        let noise = stretch(&[(19.16, 44.334), (19.24, 44.384)], 45.265);
        assert_eq!(verdict(&noise, gap, 25.0), Some(Placed::NotACut));
        // a cut in fast motion stands out of it
        let cut = stretch(
            &[(1.0333, 20.0), (1.0667, 60.0), (1.1, 22.0), (1.1333, 21.0)],
            70.0,
        );
        assert_eq!(verdict(&cut, GAP, FPS), Some(Placed::At(1.0667)));
        // weighed by the frames each step spans: a step over two frames of motion that
        // changes 30 over one is no cut; a cut over two frames among single ones is
        let motion = stretch(&[(1.0333, 30.0), (1.1, 44.0), (1.1333, 30.0)], 50.0);
        assert_eq!(verdict(&motion, GAP, FPS), Some(Placed::NotACut));
        let two_frames = stretch(&[(1.0333, 20.0), (1.1, 75.0), (1.1333, 20.0)], 80.0);
        assert_eq!(verdict(&two_frames, GAP, FPS), Some(Placed::At(1.1)));
    }

    #[test]
    fn a_stretch_is_told_by_the_name_of_its_showinfo() {
        let frame =
            "[showinfo@s12 @ 0x55d44d8d4580] n:   1 pts:   3000 pts_time:0.0333333 pos: 2596468";
        assert_eq!(stretch_index(frame), Some(12));
        assert_eq!(
            stretch_index("[showinfo@s0 @ 0x5] config in time_base: 1/90000"),
            Some(0)
        );
        // the pass's own, unnamed, and other filters are not a stretch's
        assert_eq!(
            stretch_index("[Parsed_showinfo_5 @ 0x5] n:   0 pts: 0"),
            None
        );
        assert_eq!(stretch_index("[showinfo@s @ 0x5] n:   0"), None);
        assert_eq!(stretch_index("[concat @ 0x5] something"), None);
    }

    #[test]
    fn frames_left_out_in_a_row_are_counted() {
        let gap = Gap {
            frame: 3,
            before: 1.0,
            at: 1.16,
            keyframe: None,
        };
        // 25 fps, a pyramid's reference B-frame and the anchor: one left out each time
        assert_eq!(most_left_out(&[(1.08, 1.0), (1.16, 9.0)], gap, 25.0), 1);
        // no pyramid: only the anchor, three left out
        assert_eq!(most_left_out(&[(1.16, 9.0)], gap, 25.0), 3);
        let every: Vec<(f64, f64)> = (1..=4).map(|k| (1.0 + 0.04 * k as f64, 1.0)).collect();
        assert_eq!(most_left_out(&every, gap, 25.0), 0);
    }
}
