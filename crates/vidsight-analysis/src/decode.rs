//! How much of a stream the analysis decodes.
//!
//! Most H.264/H.265 files carry B-frames. With a B-pyramid (x264's and x265's default) the
//! ones no other frame refers to come one at a time, between two frames that are decoded:
//! a decoder can drop them without touching any other picture (`-skip_frame noref`), a cut
//! is still placed within one frame of where it is, and about half of the decoding,
//! scaling and measuring is saved. Where no P-frame refers to a B-frame (x264's streams),
//! every B-frame can be dropped (`-skip_frame bidir`): only the I- and P-frames, the
//! anchors, are decoded, a third to a half of the frames, at most [`MAX_ANCHOR_RUN`] left
//! out in a row; a cut that falls between two anchors more than two frames apart is then
//! placed on its frame by decoding that stretch whole (see `refine`). A stream whose
//! P-frames do refer to B-frames (x265's) makes the decoder say a reference is missing,
//! and is decoded with `noref` instead.
//!
//! The analysis starts decoding with the most skipping the codec may allow and decides
//! from what the decoder made of the first seconds (the frames it output, against the
//! packets ffprobe listed): where that skips too many frames in a row, it starts again with
//! less (`bidir` → `noref` → every frame).
use vidsight_media::{DecodeSample, SkipFrames};

/// The decision, and what it means for the frames the analysis will see.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecodePlan {
    /// Which frames the decoder leaves out.
    pub skip: SkipFrames,
    /// Share of the stream's frames that will be decoded (1 when every frame is).
    pub kept_share: f64,
}

impl DecodePlan {
    pub const FULL: DecodePlan = DecodePlan {
        skip: SkipFrames::None,
        kept_share: 1.0,
    };
}

/// Seconds of the start of a video sampled to decide.
pub const SAMPLE_SECONDS: f64 = 4.0;
/// Videos shorter than this are decoded whole without trying (too few frames to tell).
pub const MIN_SAMPLED_SECONDS: f64 = 2.0;
/// Too few frames to tell.
const MIN_DECODED: usize = 8;
/// The most frames `bidir` may leave out in a row (x264's default of three B-frames).
pub const MAX_ANCHOR_RUN: usize = 3;

/// Seconds after which a stream already seen skipping frames in runs starts again with
/// every frame, without waiting for the whole sample.
pub const EARLY_SECONDS: f64 = 1.0;

/// The most frames in a row `skip` may leave out and still be kept.
fn allowed_run(skip: SkipFrames) -> usize {
    match skip {
        SkipFrames::None => usize::MAX,
        SkipFrames::NonRef => 1,
        SkipFrames::Bidir => MAX_ANCHOR_RUN,
    }
}

/// What to try after `skip` was found to leave out too much in a stream of `codec`: where
/// nothing refers to B-frames, `noref` would leave out what `bidir` did.
pub fn fallback(skip: SkipFrames, codec: &str) -> SkipFrames {
    match skip {
        SkipFrames::Bidir if !UNREFERENCED_B_FRAMES.contains(&codec) => SkipFrames::NonRef,
        _ => SkipFrames::None,
    }
}

/// Keeps `skip`, with which the sample was decoded, when it left at most its allowed run of
/// frames out in a row; None when it left out more (or there is too little to tell).
pub fn plan(sample: &DecodeSample, skip: SkipFrames) -> Option<DecodePlan> {
    if skip == SkipFrames::None {
        return Some(DecodePlan::FULL);
    }
    match skipped_in_a_row(sample) {
        Some((most, kept_share)) if most <= allowed_run(skip) => {
            Some(DecodePlan { skip, kept_share })
        }
        _ => None,
    }
}

/// True when the frames decoded so far with `skip` already left more out in a row than it
/// allows: the start of a sample is enough to give it up (the rest cannot undo it), not to
/// keep it.
pub fn runs_seen(sample: &DecodeSample, skip: SkipFrames) -> bool {
    skipped_in_a_row(sample).is_some_and(|(most, _)| most > allowed_run(skip))
}

/// Codecs whose B-frames no picture refers to (MPEG-1 and -2, MPEG-4 Part 2, VC-1): `noref`
/// leaves out exactly their B-frames.
pub const UNREFERENCED_B_FRAMES: &[&str] = &["mpeg1video", "mpeg2video", "mpeg4", "vc1", "wmv3"];

/// True when a stream of `codec` may be decoded from its anchors alone (`bidir`): H.264,
/// whose B-frames x264's P-frames never refer to (a stream whose do is noticed, see above),
/// and the codecs whose B-frames nothing refers to — where `noref` leaves out the same
/// frames but only one in a row may go, and broadcast MPEG-2 has two. In any container: an
/// AVI stores no presentation times, but the decoder puts its anchors on their frames
/// (MPEG-4 Part 2 with B-frames in AVI, as ffmpeg writes it and packed as Xvid does, finds
/// the same cuts from its anchors as from every frame).
pub fn anchors_may_do(codec: &str) -> bool {
    codec == "h264" || UNREFERENCED_B_FRAMES.contains(&codec)
}

/// True when the listed packets (in the order stored, the decoder's) show that `skip`
/// would leave out more frames in a row than it may: decoding with it would only be started
/// again. An anchor (I- or P-frame) is shown after every packet stored before it, a B-frame
/// before one stored ahead of it: `bidir` leaves out every B-frame, and so does `noref` in a
/// `codec` whose B-frames nothing refers to (MPEG-2's two in a row, as broadcast). In H.264
/// or HEVC, `noref` keeps the B-frames others refer to, which the order tells only in runs
/// of three or more (see [`referenced_runs_left_out`]); elsewhere the decoded sample
/// decides, as it does on a listing too short to tell.
pub fn ruled_out(packets: &[f64], skip: SkipFrames, codec: &str) -> bool {
    if skip == SkipFrames::NonRef && !UNREFERENCED_B_FRAMES.contains(&codec) {
        return referenced_runs_left_out(packets).is_some_and(|most| most > allowed_run(skip));
    }
    if !told(skip, codec) {
        return false;
    }
    let Some(frames) = stored_order(packets) else {
        return false;
    };
    let (mut most, mut run) = (0usize, 0usize);
    for (_, b_frame) in frames {
        run = if b_frame { run + 1 } else { 0 };
        most = most.max(run);
    }
    most > allowed_run(skip)
}

/// The most frames in a row `noref` would leave out of the listed runs of three or more
/// B-frames, in a codec whose B-frames others may refer to; None when the listing is too
/// short to tell. A B-frame that others refer to is stored before the frames shown before
/// it that refer to it (x264 stores a run's middle B-frame first, then the others in the
/// order shown; x265's deeper pyramids, each level's middle first): one stored right
/// before a frame shown earlier is taken to be referred to, and kept. A B-frame referred to
/// but shown first of its run is stored before a later one, and taken for one left out:
/// x264 does that with runs of two, which are not judged; in a longer run the guess could
/// only rule `noref` out where it would have done (its worst: every frame decoded). Frames
/// whose successor is not listed (the end of one of the listing's stretches) are kept.
fn referenced_runs_left_out(packets: &[f64]) -> Option<usize> {
    let shown = stored_order(packets)?;
    // each listed time's successor in the order stored (the stretches the listing reads
    // are seconds apart: a successor more than a second later is another stretch's)
    let epsilon = 5e-4;
    let stored: Vec<f64> = packets
        .iter()
        .copied()
        .filter(|time| time.is_finite())
        .take(shown.len())
        .collect();
    let key = |time: f64| (time * 1e4).round() as i64;
    let mut referred = std::collections::HashSet::new();
    for pair in stored.windows(2) {
        let (time, next) = (pair[0], pair[1]);
        if next < time - epsilon || next > time + 1.0 {
            referred.insert(key(time));
        }
    }
    if let Some(last) = stored.last() {
        referred.insert(key(*last));
    }
    let (mut most, mut index) = (0usize, 0usize);
    while index < shown.len() {
        if !shown[index].1 {
            index += 1;
            continue;
        }
        let end = (index..shown.len())
            .find(|at| !shown[*at].1)
            .unwrap_or(shown.len());
        if end - index >= 3 {
            let mut run = 0usize;
            for (time, _) in &shown[index..end] {
                run = if referred.contains(&key(*time)) {
                    0
                } else {
                    run + 1
                };
                most = most.max(run);
            }
        }
        index = end;
    }
    Some(most)
}

/// The share of the listed frames that `skip` decodes, where the order the packets are
/// stored in tells it (see [`ruled_out`]): the anchors' share for `bidir`, and for `noref`
/// in a codec whose B-frames nothing refers to. None where it does not tell, or the
/// listing is too short.
pub fn kept_share(packets: &[f64], skip: SkipFrames, codec: &str) -> Option<f64> {
    if skip == SkipFrames::None {
        return Some(1.0);
    }
    if !told(skip, codec) {
        return None;
    }
    let frames = stored_order(packets)?;
    let anchors = frames.iter().filter(|(_, b_frame)| !b_frame).count();
    Some(anchors as f64 / frames.len() as f64)
}

/// True where the order packets are stored in tells which frames `skip` leaves out.
fn told(skip: SkipFrames, codec: &str) -> bool {
    match skip {
        SkipFrames::Bidir => true,
        SkipFrames::NonRef => UNREFERENCED_B_FRAMES.contains(&codec),
        SkipFrames::None => false,
    }
}

/// The listed frames in the order shown, each with whether it is a B-frame (shown before a
/// frame stored ahead of it); None when too few are listed to tell.
fn stored_order(packets: &[f64]) -> Option<Vec<(f64, bool)>> {
    if packets.len() < MIN_DECODED {
        return None;
    }
    // half a millisecond: timestamps printed to the microsecond
    let epsilon = 5e-4;
    let mut latest = f64::NEG_INFINITY;
    // (time, a B-frame)
    let mut frames: Vec<(f64, bool)> = Vec::with_capacity(packets.len());
    // the listing's later stretches (keyframes looked for by seeking) may read the start
    // again: the first reading ends at a packet seen before
    let mut seen = std::collections::HashSet::new();
    for &time in packets.iter().filter(|time| time.is_finite()) {
        if !seen.insert((time * 1e4).round() as i64) {
            break;
        }
        frames.push((time, time <= latest + epsilon));
        latest = latest.max(time);
    }
    if frames.len() < MIN_DECODED {
        return None;
    }
    frames.sort_by(|a, b| a.0.total_cmp(&b.0));
    Some(frames)
}

/// Where the packets of a stream at a constant `fps` are, from the first frame decoded to
/// `seconds` into the stream: what a listing would show.
pub fn frame_grid(decoded: &[f64], fps: f64, seconds: f64) -> Vec<f64> {
    let Some(first) = decoded
        .iter()
        .copied()
        .filter(|t| t.is_finite())
        .reduce(f64::min)
    else {
        return Vec::new();
    };
    let count = ((seconds + 1.0 - first).max(0.0) * fps).ceil() as usize;
    (0..count).map(|index| first + index as f64 / fps).collect()
}

/// The most packets between two decoded frames and the share of packets decoded, over the
/// sampled stretch; None when there is too little to tell or the times do not line up.
fn skipped_in_a_row(sample: &DecodeSample) -> Option<(usize, f64)> {
    let decoded = sorted(&sample.decoded);
    if decoded.len() < MIN_DECODED {
        return None;
    }
    let (first, last) = (decoded[0], decoded[decoded.len() - 1]);
    // half a millisecond: timestamps from two printouts of the same time base
    let epsilon = 5e-4;
    let packets: Vec<f64> = sorted(&sample.packets)
        .into_iter()
        .filter(|time| *time >= first - epsilon && *time <= last + epsilon)
        .collect();
    if packets.len() < decoded.len() {
        // timestamps that do not line up (a stream without usable packet times)
        return None;
    }
    let mut most_in_a_row = 0usize;
    let mut position = 0usize;
    for pair in decoded.windows(2) {
        while position < packets.len() && packets[position] <= pair[0] + epsilon {
            position += 1;
        }
        let mut between = 0usize;
        while position < packets.len() && packets[position] < pair[1] - epsilon {
            between += 1;
            position += 1;
        }
        most_in_a_row = most_in_a_row.max(between);
    }
    Some((most_in_a_row, decoded.len() as f64 / packets.len() as f64))
}

fn sorted(times: &[f64]) -> Vec<f64> {
    let mut times: Vec<f64> = times.iter().copied().filter(|t| t.is_finite()).collect();
    times.sort_by(f64::total_cmp);
    times.dedup_by(|a, b| (*a - *b).abs() < 1e-6);
    times
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_constant_frame_rate_gives_the_packets_a_listing_would() {
        // 25 fps from 0.04, every other frame decoded: one left out at a time
        let decoded: Vec<f64> = (0..50).map(|k| 0.04 + 0.08 * k as f64).collect();
        let grid = frame_grid(&decoded, 25.0, 4.0);
        assert!((grid[1] - 0.08).abs() < 1e-9 && (124..=125).contains(&grid.len()));
        let sample = DecodeSample {
            decoded: decoded.clone(),
            packets: grid,
        };
        let chosen = plan(&sample, SkipFrames::NonRef).unwrap();
        assert!((chosen.kept_share - 0.5).abs() < 0.02);
        // three in four left out: runs, every frame is decoded
        let sparse: Vec<f64> = (0..25).map(|k| 0.16 * k as f64).collect();
        let sample = DecodeSample {
            packets: frame_grid(&sparse, 25.0, 4.0),
            decoded: sparse,
        };
        assert!(plan(&sample, SkipFrames::NonRef).is_none());
        assert!(frame_grid(&[], 25.0, 4.0).is_empty());
    }

    use super::*;

    fn frames(indices: impl IntoIterator<Item = u32>) -> Vec<f64> {
        indices.into_iter().map(|i| i as f64 / 30.0).collect()
    }

    fn sample(decoded: Vec<f64>, total: u32) -> DecodeSample {
        DecodeSample {
            decoded,
            packets: frames(0..total),
        }
    }

    const NONREF: SkipFrames = SkipFrames::NonRef;
    const BIDIR: SkipFrames = SkipFrames::Bidir;

    #[test]
    fn a_b_pyramid_skips_every_other_frame() {
        // I b B b P b B b P …: the b's (odd frames) are left out one at a time
        let plan = plan(&sample(frames((0..120).step_by(2)), 120), NONREF).unwrap();
        assert_eq!(plan.skip, NONREF);
        assert!((plan.kept_share - 0.5).abs() < 0.02, "{plan:?}");
    }

    #[test]
    fn b_frames_without_a_pyramid_are_not_skipped_as_non_reference() {
        // I b b P b b P: two in a row would cost a cut its frame
        let sparse = sample(frames((0..120).step_by(3)), 120);
        assert_eq!(plan(&sparse, NONREF), None);
        assert_eq!(fallback(NONREF, H264), SkipFrames::None);
        assert_eq!(plan(&sparse, SkipFrames::None), Some(DecodePlan::FULL));
    }

    #[test]
    fn anchors_may_leave_out_three_in_a_row_and_no_more() {
        // I B B B P B B B P: a quarter of the frames, cuts refined afterwards
        let anchors = plan(&sample(frames((0..120).step_by(4)), 120), BIDIR).unwrap();
        assert_eq!(anchors.skip, BIDIR);
        assert!((anchors.kept_share - 0.25).abs() < 0.02, "{anchors:?}");
        // x264's adaptive B-frames: runs of 0 to 3
        let mixed: Vec<u32> = (0..120).filter(|i| !matches!(i % 7, 1..=3)).collect();
        assert!(plan(&sample(frames(mixed), 120), BIDIR).is_some());
        // four in a row (x265's five-frame pyramids): anchors too far apart
        let wide = sample(frames((0..120).step_by(5)), 120);
        assert_eq!(plan(&wide, BIDIR), None);
        assert!(runs_seen(&wide, BIDIR));
        assert_eq!(fallback(BIDIR, H264), NONREF);
        assert_eq!(fallback(BIDIR, "mpeg2video"), SkipFrames::None);
    }

    #[test]
    fn anchors_alone_are_tried_where_nothing_refers_to_b_frames_or_x264_wrote_them() {
        assert!(anchors_may_do(H264));
        assert!(anchors_may_do("mpeg2video"));
        assert!(anchors_may_do("mpeg4"));
        assert!(!anchors_may_do("hevc"));
    }

    #[test]
    fn a_stream_without_skippable_frames_loses_nothing() {
        // skipping nothing is harmless: no need to start again
        let none = plan(&sample(frames(0..120), 120), NONREF).unwrap();
        assert!(none.kept_share == 1.0, "{none:?}");
        let mostly: Vec<u32> = (0..120).filter(|i| i % 10 != 5).collect();
        let few = plan(&sample(frames(mostly), 120), BIDIR).unwrap();
        assert!((few.kept_share - 0.9).abs() < 0.02, "{few:?}");
    }

    #[test]
    fn runs_in_the_first_frames_are_enough_to_give_up_skipping() {
        assert!(runs_seen(&sample(frames((0..30).step_by(3)), 30), NONREF));
        assert!(!runs_seen(&sample(frames((0..30).step_by(3)), 30), BIDIR));
        // a pyramid's start, too few frames, or no packet times: wait for the whole sample
        assert!(!runs_seen(&sample(frames((0..30).step_by(2)), 30), NONREF));
        assert!(!runs_seen(&sample(frames([0, 3, 6]), 9), NONREF));
        let none = DecodeSample {
            decoded: frames((0..30).step_by(3)),
            packets: Vec::new(),
        };
        assert!(!runs_seen(&none, NONREF));
    }

    /// Packet times in the order x264 stores them: each anchor, then the B-frames shown
    /// before it, a pyramid's middle first.
    const H264: &str = "h264";

    /// An I-frame, then five runs of eight frames, each stored in `order` (frames counted
    /// from the run's start).
    fn eights(order: &[u32]) -> Vec<Vec<u32>> {
        std::iter::once(vec![0])
            .chain((0..5).map(|k| order.iter().map(|at| 8 * k + at).collect()))
            .collect()
    }

    fn stored(minigops: &[&[u32]]) -> Vec<f64> {
        minigops
            .iter()
            .flat_map(|order| order.iter().map(|i| *i as f64 / 30.0))
            .collect()
    }

    #[test]
    fn a_listing_tells_when_anchors_alone_leave_out_too_much() {
        // I, then P b B b (the middle B stored first) over and over: three in a row
        let mut pyramid = vec![vec![0u32]];
        pyramid.extend((0..10).map(|k| vec![4 * k + 4, 4 * k + 2, 4 * k + 1, 4 * k + 3]));
        let pyramid: Vec<&[u32]> = pyramid.iter().map(Vec::as_slice).collect();
        assert!(!ruled_out(&stored(&pyramid), BIDIR, H264));
        // the listing reads the start again (a keyframe looked for near it): the first
        // reading is what counts
        let mut again = stored(&pyramid);
        again.extend(stored(&pyramid[3..]));
        assert!(!ruled_out(&again, BIDIR, H264));
        // seven B-frames a run (testvideo.mp4), stored as a pyramid or as shown
        let seven = eights(&[8, 4, 1, 2, 3, 5, 6, 7]);
        let seven: Vec<&[u32]> = seven.iter().map(Vec::as_slice).collect();
        assert!(ruled_out(&stored(&seven), BIDIR, H264));
        let flat = eights(&[8, 1, 2, 3, 4, 5, 6, 7]);
        let flat: Vec<&[u32]> = flat.iter().map(Vec::as_slice).collect();
        assert!(ruled_out(&stored(&flat), BIDIR, H264));
        // seven in a run, the middle one referred to (testvideo.mp4): `noref` leaves out
        // three in a row; stored as shown, seven
        assert!(ruled_out(&stored(&seven), NONREF, H264));
        assert!(ruled_out(&stored(&flat), NONREF, H264));
        // x265's deeper pyramid over seven (each level's middle first): one at a time
        let deep = eights(&[8, 4, 2, 1, 3, 6, 5, 7]);
        let deep: Vec<&[u32]> = deep.iter().map(Vec::as_slice).collect();
        assert!(!ruled_out(&stored(&deep), NONREF, "hevc"));
        assert!(!ruled_out(&stored(&deep), NONREF, H264));
        // x264's three with a pyramid (the middle first): one at a time
        assert!(!ruled_out(&stored(&pyramid), NONREF, H264));
        // two in a run, the first referred to and stored first: not judged (the sample
        // decides)
        let first: Vec<Vec<u32>> = std::iter::once(vec![0])
            .chain((0..10).map(|k| vec![3 * k + 3, 3 * k + 1, 3 * k + 2]))
            .collect();
        let first: Vec<&[u32]> = first.iter().map(Vec::as_slice).collect();
        assert!(!ruled_out(&stored(&first), NONREF, H264));
        // the listing's second stretch starts seconds later: a run cut there is not judged
        // by what follows it
        let mut windows = stored(&pyramid);
        windows.extend(stored(&pyramid).iter().map(|time| time + 12.0));
        assert!(!ruled_out(&windows, NONREF, H264));
        // no B-frames, nothing to skip; too short a listing, or none: no guess
        assert!(!ruled_out(&frames(0..60), BIDIR, H264));
        assert!(!ruled_out(&stored(&seven[..1]), BIDIR, H264));
        assert!(!ruled_out(&[], BIDIR, H264));
        // MPEG-2 as broadcast, I B B P B B P …: `noref` leaves out the two B-frames; one
        // B-frame at a time it may keep
        let two: Vec<Vec<u32>> = std::iter::once(vec![0])
            .chain((0..10).map(|k| vec![3 * k + 3, 3 * k + 1, 3 * k + 2]))
            .collect();
        let two: Vec<&[u32]> = two.iter().map(Vec::as_slice).collect();
        assert!(ruled_out(&stored(&two), NONREF, "mpeg2video"));
        assert!(!ruled_out(&stored(&two), NONREF, H264));
        assert!(!ruled_out(&stored(&two), SkipFrames::None, "mpeg2video"));
        let one: Vec<Vec<u32>> = std::iter::once(vec![0])
            .chain((0..15).map(|k| vec![2 * k + 2, 2 * k + 1]))
            .collect();
        let one: Vec<&[u32]> = one.iter().map(Vec::as_slice).collect();
        assert!(!ruled_out(&stored(&one), NONREF, "mpeg2video"));
    }

    #[test]
    fn a_listing_tells_the_share_of_frames_decoded() {
        // I, then P b B b: anchors alone are about a quarter
        let mut pyramid = vec![vec![0u32]];
        pyramid.extend((0..10).map(|k| vec![4 * k + 4, 4 * k + 2, 4 * k + 1, 4 * k + 3]));
        let pyramid: Vec<&[u32]> = pyramid.iter().map(Vec::as_slice).collect();
        let share = kept_share(&stored(&pyramid), BIDIR, H264).unwrap();
        assert!((share - 11.0 / 41.0).abs() < 1e-9, "{share}");
        // what `noref` keeps of H.264 the order does not tell
        assert_eq!(kept_share(&stored(&pyramid), NONREF, H264), None);
        // MPEG-2, I B B P …: a third, with `noref` as with `bidir`
        let two: Vec<Vec<u32>> = std::iter::once(vec![0])
            .chain((0..10).map(|k| vec![3 * k + 3, 3 * k + 1, 3 * k + 2]))
            .collect();
        let two: Vec<&[u32]> = two.iter().map(Vec::as_slice).collect();
        let share = kept_share(&stored(&two), NONREF, "mpeg2video").unwrap();
        assert!((share - 11.0 / 31.0).abs() < 1e-9, "{share}");
        // every frame, or no B-frames: all of them; too short a listing: no guess
        assert_eq!(
            kept_share(&stored(&two), SkipFrames::None, "mpeg2video"),
            Some(1.0)
        );
        assert_eq!(kept_share(&frames(0..60), BIDIR, H264), Some(1.0));
        assert_eq!(kept_share(&stored(&pyramid[..1]), BIDIR, H264), None);
    }

    #[test]
    fn too_little_or_mismatched_evidence_skips_nothing() {
        assert_eq!(plan(&sample(frames([0, 2, 4]), 6), NONREF), None);
        // no packet times at all
        let none = DecodeSample {
            decoded: frames((0..60).step_by(2)),
            packets: Vec::new(),
        };
        assert_eq!(plan(&none, BIDIR), None);
    }

    #[test]
    fn packets_read_past_the_last_decoded_frame_do_not_count() {
        // the demuxer reads ahead of the sample's end
        let plan = plan(&sample(frames((0..60).step_by(2)), 200), NONREF).unwrap();
        assert!((plan.kept_share - 0.5).abs() < 0.02, "{plan:?}");
    }

    #[test]
    fn packets_come_in_decode_order_and_are_sorted_first() {
        let mut packets = frames(0..60);
        // decode order of I P b B b: 0, 4, 2, 1, 3, …
        for chunk in packets.chunks_mut(4) {
            chunk.reverse();
        }
        let sample = DecodeSample {
            decoded: frames((0..60).step_by(2)),
            packets,
        };
        assert!(plan(&sample, NONREF).is_some());
    }
}
