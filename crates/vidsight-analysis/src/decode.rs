//! How much of a stream the analysis decodes.
//!
//! Most H.264/H.265 files carry B-frames that no other frame refers to; a decoder can drop
//! them without touching any other picture (`-skip_frame noref`). With a B-pyramid (x264's
//! and x265's default) they come one at a time, between two frames that are decoded, so a
//! cut is still placed within one frame of where it is, while about half of the decoding,
//! scaling and measuring is saved. A stream whose skippable frames come several in a row
//! (B-frames without a pyramid) would lose that precision and is decoded whole. A stream
//! with none loses nothing either way.
//!
//! The analysis starts decoding as if frames can be skipped and decides from what the
//! decoder made of the first seconds (the frames it output, against the packets ffprobe
//! listed): in the rare case they cannot, it starts again, decoding every frame.
use vidsight_media::DecodeSample;

/// The decision, and what it means for the frames the analysis will see.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecodePlan {
    /// Decode with `-skip_frame noref`.
    pub skip_nonref: bool,
    /// Share of the stream's frames that will be decoded (1 when every frame is).
    pub kept_share: f64,
}

impl DecodePlan {
    pub const FULL: DecodePlan = DecodePlan {
        skip_nonref: false,
        kept_share: 1.0,
    };
}

/// Seconds of the start of a video sampled to decide.
pub const SAMPLE_SECONDS: f64 = 4.0;
/// Too few frames to tell.
const MIN_DECODED: usize = 8;

/// Seconds after which a stream already seen skipping frames in runs starts again with
/// every frame, without waiting for the whole sample.
pub const EARLY_SECONDS: f64 = 1.0;

/// Chooses from what the sample decode saw: skip when at most one frame in a row was left
/// out.
pub fn plan(sample: &DecodeSample) -> DecodePlan {
    match skipped_in_a_row(sample) {
        Some((most, kept_share)) if most <= 1 => DecodePlan {
            skip_nonref: true,
            kept_share,
        },
        _ => DecodePlan::FULL,
    }
}

/// True when the frames decoded so far already left several out in a row: the start of a
/// sample is enough to give up skipping (the rest cannot undo it), not to keep it.
pub fn runs_seen(sample: &DecodeSample) -> bool {
    skipped_in_a_row(sample).is_some_and(|(most, _)| most > 1)
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
        let chosen = plan(&sample);
        assert!(chosen.skip_nonref && (chosen.kept_share - 0.5).abs() < 0.02);
        // three in four left out: runs, every frame is decoded
        let sparse: Vec<f64> = (0..25).map(|k| 0.16 * k as f64).collect();
        let sample = DecodeSample {
            packets: frame_grid(&sparse, 25.0, 4.0),
            decoded: sparse,
        };
        assert!(!plan(&sample).skip_nonref);
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

    #[test]
    fn a_b_pyramid_skips_every_other_frame() {
        // I b B b P b B b P …: the b's (odd frames) are left out one at a time
        let plan = plan(&sample(frames((0..120).step_by(2)), 120));
        assert!(plan.skip_nonref);
        assert!((plan.kept_share - 0.5).abs() < 0.02, "{plan:?}");
    }

    #[test]
    fn b_frames_without_a_pyramid_are_decoded_whole() {
        // I b b P b b P: two in a row would cost a cut its frame
        assert_eq!(
            plan(&sample(frames((0..120).step_by(3)), 120)),
            DecodePlan::FULL
        );
    }

    #[test]
    fn a_stream_without_skippable_frames_loses_nothing() {
        // skipping nothing is harmless: no need to start again
        let none = plan(&sample(frames(0..120), 120));
        assert!(none.skip_nonref && none.kept_share == 1.0, "{none:?}");
        let mostly: Vec<u32> = (0..120).filter(|i| i % 10 != 5).collect();
        let few = plan(&sample(frames(mostly), 120));
        assert!(
            few.skip_nonref && (few.kept_share - 0.9).abs() < 0.02,
            "{few:?}"
        );
    }

    #[test]
    fn runs_in_the_first_frames_are_enough_to_give_up_skipping() {
        assert!(runs_seen(&sample(frames((0..30).step_by(3)), 30)));
        // a pyramid's start, too few frames, or no packet times: wait for the whole sample
        assert!(!runs_seen(&sample(frames((0..30).step_by(2)), 30)));
        assert!(!runs_seen(&sample(frames([0, 3, 6]), 9)));
        let none = DecodeSample {
            decoded: frames((0..30).step_by(3)),
            packets: Vec::new(),
        };
        assert!(!runs_seen(&none));
    }

    #[test]
    fn too_little_or_mismatched_evidence_decodes_whole() {
        assert_eq!(plan(&sample(frames([0, 2, 4]), 6)), DecodePlan::FULL);
        // no packet times at all
        let none = DecodeSample {
            decoded: frames((0..60).step_by(2)),
            packets: Vec::new(),
        };
        assert_eq!(plan(&none), DecodePlan::FULL);
    }

    #[test]
    fn packets_read_past_the_last_decoded_frame_do_not_count() {
        // the demuxer reads ahead of the sample's end
        let plan = plan(&sample(frames((0..60).step_by(2)), 200));
        assert!(plan.skip_nonref);
        assert!((plan.kept_share - 0.5).abs() < 0.02, "{plan:?}");
    }

    #[test]
    fn packets_come_in_decode_order_and_are_sorted_first() {
        let mut packets = frames(0..60);
        // decode order of I P b B b: 0, 4, 2, 1, 3, …
        for chunk in packets.chunks_mut(4) {
            chunk.reverse();
        }
        let plan = plan(&DecodeSample {
            decoded: frames((0..60).step_by(2)),
            packets,
        });
        assert!(plan.skip_nonref);
    }
}
