//! The packet listing of an MP4/MOV's first video track, read from the file's index (its
//! `moov` box) instead of asking ffprobe: every sample's presentation time, as ffmpeg gives
//! it, and whether it is a keyframe.
//!
//! A listing from ffprobe is a process, about 0.09 s before a video decoded in parts can
//! start (most of it ffprobe's start: loading its libraries); the index is a few
//! milliseconds to read, and holds every keyframe, not only those near the times asked.
//!
//! Read by hand, not with a crate: `mp4parse` (Mozilla's) keeps only the first two entries
//! of an edit list and says nothing of the others, and the edit list decides the times
//! ffmpeg gives. Only the layouts whose times are known to come out as ffmpeg's are read
//! (checked against ffprobe's listing on every clip of ../shared/media and on files made
//! with and without edit lists, B-frames, negative composition offsets, an empty edit): no
//! edit list, or one edit (after an optional empty one) at normal rate that starts on the
//! first sample shown and ends after the last. Anything else (a fragmented file, an edit
//! that starts inside the stream or ends before its last sample, several edits, a stream
//! that is no track, a damaged box) is None, and ffprobe lists the packets.
//!
//! An upload is untrusted input: every length is checked against what was read, and what
//! is read is bounded: the boxes walked ([`MAX_TOP_BOXES`]), the index ([`MAX_INDEX_BYTES`]),
//! the samples ([`MAX_SAMPLES`], and no more than the file's bytes can hold).
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// The largest `moov` box read (a ten-hour video at 30 frames a second has one of about
/// 20 MiB).
pub const MAX_INDEX_BYTES: u64 = 128 << 20;

/// Every sample of the video track at position `track` in the order stored: (presentation
/// time in seconds on the stream's clock, keyframe). ffmpeg makes a stream of each track,
/// in the order stored: the file must have `streams` tracks (no stream made of anything
/// else, as a cover picture), and `track` must be the first video track. None where it
/// does not, or the file is not an MP4/MOV this reads (see the module's documentation).
pub fn video_listing(path: &Path, track: usize, streams: usize) -> Option<Vec<(f64, bool)>> {
    let mut file = std::fs::File::open(path).ok()?;
    let length = file.metadata().ok()?.len();
    let moov = read_moov(&mut file, length)?;
    listing_in(&moov, length, track, streams)
}

/// Everything this module reads of a file, on `file`'s bytes: the `moov` found among its
/// boxes, and `file` itself taken as a `moov`'s content (so that mutated indexes reach the
/// sample tables), each listed for every track and guessed. For the fuzz target in `fuzz/`
/// and the mutation test below: whatever the bytes, it returns, without panicking.
#[doc(hidden)]
pub fn read_untrusted(file: &[u8]) {
    let length = file.len() as u64;
    let found = read_moov(&mut std::io::Cursor::new(file), length);
    for moov in found.as_deref().into_iter().chain([file]) {
        let tracks = boxes(moov).filter(|(kind, _)| *kind == b"trak").count();
        for track in 0..tracks {
            let _ = listing_in(moov, length, track, tracks);
        }
        let _ = guess_in(moov);
    }
}

/// The most top-level boxes looked at for the `moov` (a file has a handful; a file of
/// millions of tiny ones would otherwise cost a seek each).
const MAX_TOP_BOXES: usize = 1024;

/// The `moov` box's content, found by walking the top-level boxes (it may follow the media
/// data); None where a `moof` comes first (a fragmented file: its samples are in `moof`
/// boxes; one with the `moov` first says so with an `mvex` in it).
fn read_moov(file: &mut (impl Read + Seek), length: u64) -> Option<Vec<u8>> {
    let mut at = 0u64;
    for _ in 0..MAX_TOP_BOXES {
        if at + 8 > length {
            return None;
        }
        file.seek(SeekFrom::Start(at)).ok()?;
        let mut header = [0u8; 16];
        file.read_exact(&mut header[..8]).ok()?;
        let mut size = u64::from(u32::from_be_bytes(header[..4].try_into().ok()?));
        let mut header_len = 8;
        if size == 1 {
            file.read_exact(&mut header[8..]).ok()?;
            size = u64::from_be_bytes(header[8..16].try_into().ok()?);
            header_len = 16;
        } else if size == 0 {
            size = length - at;
        }
        if size < header_len || at.checked_add(size)? > length {
            return None;
        }
        match &header[4..8] {
            b"moof" => return None,
            b"moov" => {
                let content = size - header_len;
                if content > MAX_INDEX_BYTES {
                    return None;
                }
                let mut bytes = vec![0u8; content as usize];
                file.read_exact(&mut bytes).ok()?;
                return Some(bytes);
            }
            _ => at += size,
        }
    }
    None
}

/// The boxes in `data`: (type, content).
fn boxes(mut data: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    std::iter::from_fn(move || {
        if data.len() < 8 {
            return None;
        }
        let size = u32::from_be_bytes(data[..4].try_into().ok()?) as u64;
        let (size, header) = match size {
            0 => (data.len() as u64, 8),
            1 if data.len() >= 16 => (u64::from_be_bytes(data[8..16].try_into().ok()?), 16),
            1 => return None,
            size => (size, 8),
        };
        if size < header || size > data.len() as u64 {
            data = &[];
            return None;
        }
        let (this, rest) = data.split_at(size as usize);
        data = rest;
        Some((&this[4..8], &this[header as usize..]))
    })
}

/// The first box of type `kind` in `data`, then in it the next of `path`, …
fn find<'a>(data: &'a [u8], path: &[&[u8; 4]]) -> Option<&'a [u8]> {
    let (first, rest) = path.split_first()?;
    let content = boxes(data).find(|(kind, _)| kind == first)?.1;
    if rest.is_empty() {
        Some(content)
    } else {
        find(content, rest)
    }
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(data: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(data.get(at..at + 8)?.try_into().ok()?))
}

/// A full box's table: its entry count and the entries' bytes (`entry` bytes each).
fn table(content: &[u8], entry: usize) -> Option<(usize, &[u8])> {
    let count = u32_at(content, 4)? as usize;
    let entries = content.get(8..8 + count.checked_mul(entry)?)?;
    Some((count, entries))
}

/// A header box's timescale (`mvhd`, `mdhd`: after the times, 32 or 64 bits each).
fn timescale(header: &[u8]) -> Option<u64> {
    let at = if *header.first()? == 1 { 20 } else { 12 };
    Some(u64::from(u32_at(header, at)?)).filter(|scale| *scale > 0)
}

/// The most samples read: 37 hours at 30 frames a second (the listing holds about 25 bytes
/// a sample while it is made). A table claiming more is damaged or hostile, and so is one
/// claiming more samples than the file could hold.
const MAX_SAMPLES: usize = 4_000_000;

fn listing_in(
    moov: &[u8],
    file_length: u64,
    track: usize,
    streams: usize,
) -> Option<Vec<(f64, bool)>> {
    if find(moov, &[b"mvex"]).is_some() {
        return None;
    }
    let movie_scale = timescale(find(moov, &[b"mvhd"])?)?;
    let traks: Vec<&[u8]> = boxes(moov)
        .filter(|(kind, _)| *kind == b"trak")
        .map(|(_, content)| content)
        .collect();
    let is_video = |trak: &[u8]| {
        find(trak, &[b"mdia", b"hdlr"]).and_then(|hdlr| hdlr.get(8..12)) == Some(b"vide")
    };
    // the first video track, where the probe says it is
    if traks.len() != streams || traks.iter().position(|trak| is_video(trak)) != Some(track) {
        return None;
    }
    let trak = traks[track];
    let scale = timescale(find(trak, &[b"mdia", b"mdhd"])?)?;
    let stbl = find(trak, &[b"mdia", b"minf", b"stbl"])?;

    // decoding times: runs of (count, duration)
    let (runs, stts) = table(find(stbl, &[b"stts"])?, 8)?;
    let mut samples = 0usize;
    for run in stts.chunks_exact(8).take(runs) {
        samples = samples.checked_add(u32_at(run, 0)? as usize)?;
    }
    // as many sizes, each in the table or all alike (and then held in the file)
    let sizes = find(stbl, &[b"stsz"])?;
    let (size, count) = (u32_at(sizes, 4)?, u32_at(sizes, 8)? as usize);
    let held = match size {
        0 => sizes.len() >= 12 + 4 * samples,
        size => (samples as u64).checked_mul(u64::from(size))? <= file_length,
    };
    if samples == 0 || samples > MAX_SAMPLES || count != samples || !held {
        return None;
    }
    // composition offsets: runs of (count, offset), read as signed (as ffmpeg does in
    // either version of the box)
    let mut offsets = match find(stbl, &[b"ctts"]) {
        Some(ctts) => {
            let (runs, entries) = table(ctts, 8)?;
            let runs = entries.chunks_exact(8).take(runs);
            Some(runs.map(|run| Some((u32_at(run, 0)?, i64::from(u32_at(run, 4)? as i32)))))
        }
        None => None,
    };
    let mut run_left = 0u32;
    let mut offset = 0i64;
    let mut compositions: Vec<i64> = Vec::with_capacity(samples);
    let mut decode = 0i64;
    for run in stts.chunks_exact(8).take(runs) {
        let (count, duration) = (u32_at(run, 0)?, i64::from(u32_at(run, 4)?));
        for _ in 0..count {
            if let Some(runs) = offsets.as_mut() {
                while run_left == 0 {
                    (run_left, offset) = runs.next()??;
                }
                run_left -= 1;
            }
            compositions.push(decode + offset);
            decode = decode.checked_add(duration)?;
        }
    }
    // every offset used, none left over
    if let Some(mut runs) = offsets {
        if run_left != 0 || runs.any(|run| run.is_none_or(|(count, _)| count != 0)) {
            return None;
        }
    }
    // keyframes: every sample without a table
    let mut keys = vec![true; samples];
    if let Some(stss) = find(stbl, &[b"stss"]) {
        let (count, entries) = table(stss, 4)?;
        if count == 0 {
            return None;
        }
        keys.fill(false);
        for entry in entries.chunks_exact(4) {
            let number = u32_at(entry, 0)? as usize;
            *keys.get_mut(number.checked_sub(1)?)? = true;
        }
    }
    let shift = edit_shift(trak, movie_scale, scale, &compositions)?;
    compositions
        .iter()
        .zip(keys)
        .map(|(composition, key)| {
            Some((composition.checked_add(shift)? as f64 / scale as f64, key))
        })
        .collect()
}

/// What the edit list adds to every composition time (track ticks): the empty edit's
/// length less where the edit starts in the media. None for the lists this does not read:
/// more than one edit after an optional empty one, a rate other than 1, an edit that does
/// not start on the first sample shown or ends before the last one is shown (ffmpeg drops
/// samples then, and retimes the rest its own way).
fn edit_shift(trak: &[u8], movie_scale: u64, scale: u64, compositions: &[i64]) -> Option<i64> {
    let Some(elst) = find(trak, &[b"edts", b"elst"]) else {
        return Some(0);
    };
    let version = *elst.first()?;
    let entry = if version == 1 { 20 } else { 12 };
    let (count, entries) = table(elst, entry)?;
    // (segment duration in movie ticks, media time in track ticks, rate)
    let mut edits = Vec::with_capacity(count);
    for edit in entries.chunks_exact(entry) {
        let (duration, media_time, rate) = if version == 1 {
            (u64_at(edit, 0)?, u64_at(edit, 8)? as i64, u32_at(edit, 16)?)
        } else {
            let media = i64::from(u32_at(edit, 4)? as i32);
            (u64::from(u32_at(edit, 0)?), media, u32_at(edit, 8)?)
        };
        edits.push((duration, media_time, rate));
    }
    let (empty, (duration, media_time, rate)) = match edits.as_slice() {
        [] => return Some(0),
        [edit] => (0, *edit),
        [(empty, -1, _), edit] => (*empty, *edit),
        _ => return None,
    };
    let ticks = |movie_ticks: u64| u128::from(movie_ticks) * u128::from(scale);
    // the edit's length in track ticks (rounded down: a tick short at most)
    let length = i64::try_from(ticks(duration) / u128::from(movie_scale)).ok()?;
    let (first, last) = (*compositions.iter().min()?, *compositions.iter().max()?);
    if rate != 0x0001_0000 || media_time != first || length <= last - first {
        return None;
    }
    let empty = (ticks(empty) + u128::from(movie_scale) / 2) / u128::from(movie_scale);
    i64::try_from(empty).ok()?.checked_sub(media_time)
}

/// What ffprobe would say of an MP4/MOV, as far as its index tells it: the report of
/// [`crate::MediaTools::probe`], guessed in a few milliseconds so that the analysis can
/// start before the probe ends (the probe still runs, and decides: a guess that differs from
/// it in anything the analysis reads is dropped, see `vidsight_analysis::read_alike`).
///
/// Guessed only for what is common and known to come out as ffprobe's: tracks of video and
/// sound only (a subtitle, timecode or chapter track, or a cover picture in the metadata,
/// is a stream this does not describe), H.264, HEVC or MPEG-4 Part 2 pictures, AAC sound,
/// a frame rate ffmpeg takes from the index (one duration for every frame, or for all but
/// the last), no fragments. What only the pictures' own headers tell (pixels that are not
/// square, where no `pasp` box says so; the frames a decoder holds back) is guessed as the
/// usual case; the probe corrects it.
pub fn guess_report(path: &Path) -> Option<crate::ProbeReport> {
    let mut file = std::fs::File::open(path).ok()?;
    let length = file.metadata().ok()?.len();
    guess_in(&read_moov(&mut file, length)?)
}

/// [`guess_report`] of a `moov`'s content.
fn guess_in(moov: &[u8]) -> Option<crate::ProbeReport> {
    crate::parse_probe_output(&serde_json::to_vec(&report_of(moov)?).ok()?).ok()
}

fn report_of(moov: &[u8]) -> Option<serde_json::Value> {
    use serde_json::json;
    // a cover picture (in the metadata's `covr`) is a stream to ffprobe
    let cover = find(moov, &[b"udta"]).is_some_and(|udta| udta.windows(4).any(|w| w == b"covr"));
    if find(moov, &[b"mvex"]).is_some() || cover {
        return None;
    }
    let mvhd = find(moov, &[b"mvhd"])?;
    let movie_scale = timescale(mvhd)?;
    let movie_duration = match *mvhd.first()? {
        1 => u64_at(mvhd, 24)?,
        _ => u64::from(u32_at(mvhd, 16)?),
    };
    if movie_duration == 0 {
        return None;
    }
    let mut streams = Vec::new();
    let mut first_video = None;
    for (index, (kind, trak)) in boxes(moov).filter(|(kind, _)| *kind == b"trak").enumerate() {
        debug_assert_eq!(kind, b"trak");
        let handler = find(trak, &[b"mdia", b"hdlr"])?.get(8..12)?;
        let stsd = find(trak, &[b"mdia", b"minf", b"stbl", b"stsd"])?;
        if u32_at(stsd, 4)? != 1 {
            return None;
        }
        let (format, entry) = boxes(stsd.get(8..)?).next()?;
        match handler {
            b"vide" => {
                let codec = match format {
                    b"avc1" | b"avc3" => "h264",
                    b"hvc1" | b"hev1" => "hevc",
                    b"mp4v" if object_type(entry.get(78..)?)? == 0x20 => "mpeg4",
                    _ => return None,
                };
                let (width, height) = (
                    u16::from_be_bytes(entry.get(24..26)?.try_into().ok()?),
                    u16::from_be_bytes(entry.get(26..28)?.try_into().ok()?),
                );
                let sample_aspect = match find(entry.get(78..)?, &[b"pasp"]) {
                    Some(pasp) => format!("{}:{}", u32_at(pasp, 0)?, u32_at(pasp, 4)?),
                    None => "1:1".to_owned(),
                };
                let rates = frame_rates(trak)?;
                let reorders = find(trak, &[b"mdia", b"minf", b"stbl", b"ctts"]).is_some();
                let mut stream = json!({
                    "index": index,
                    "codec_type": "video",
                    "codec_name": codec,
                    "width": width,
                    "height": height,
                    "sample_aspect_ratio": sample_aspect,
                    "r_frame_rate": rates.nominal,
                    "avg_frame_rate": rates.average,
                    "nb_frames": rates.frames.to_string(),
                    "has_b_frames": u32::from(reorders),
                });
                if let Some(rotation) = rotation(trak)? {
                    stream["side_data_list"] = json!([{ "rotation": rotation }]);
                }
                if first_video.is_none() {
                    first_video = Some(index);
                }
                streams.push(stream);
            }
            b"soun" => {
                // AAC (MPEG-4 audio, and MPEG-2 AAC's three profiles)
                let codec = match format {
                    b"mp4a" if matches!(object_type(entry.get(28..)?)?, 0x40 | 0x66..=0x68) => {
                        "aac"
                    }
                    _ => return None,
                };
                streams.push(json!({ "index": index, "codec_type": "audio", "codec_name": codec }));
            }
            _ => return None,
        }
    }
    let video = first_video?;
    let traks: Vec<&[u8]> = boxes(moov)
        .filter(|(kind, _)| *kind == b"trak")
        .map(|(_, content)| content)
        .collect();
    let times = listing_in(moov, u64::MAX, video, traks.len())?;
    let start = times
        .iter()
        .map(|(time, _)| *time)
        .fold(f64::INFINITY, f64::min);
    // ffmpeg counts the movie's duration in microseconds, rounded to the nearest
    let micros = (u128::from(movie_duration) * 1_000_000 + u128::from(movie_scale) / 2)
        / u128::from(movie_scale);
    let seconds = |micros: u128| format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000);
    if !(start.is_finite() && start >= 0.0) {
        return None;
    }
    // where the sound starts is not read: taken as the file's start (what ffmpeg gives an
    // AAC track whose edit list skips the encoder's priming samples)
    let start = if traks.len() > 1 {
        start.min(0.0)
    } else {
        start
    };
    Some(json!({
        "streams": streams,
        "format": {
            "format_name": "mov,mp4,m4a,3gp,3g2,mj2",
            "duration": seconds(micros),
            "start_time": format!("{start:.6}"),
        },
    }))
}

/// A video track's frame rates as ffmpeg gives them from the index (`n/d`): the average
/// over every frame, and the nominal one where every frame but perhaps the last lasts
/// alike (otherwise ffmpeg measures it from the frames, which this does not guess).
struct FrameRates {
    nominal: String,
    average: String,
    frames: u64,
}

fn frame_rates(trak: &[u8]) -> Option<FrameRates> {
    let scale = timescale(find(trak, &[b"mdia", b"mdhd"])?)?;
    let (runs, stts) = table(find(trak, &[b"mdia", b"minf", b"stbl", b"stts"])?, 8)?;
    let runs: Vec<(u64, u64)> = stts
        .chunks_exact(8)
        .take(runs)
        .map(|run| Some((u64::from(u32_at(run, 0)?), u64::from(u32_at(run, 4)?))))
        .collect::<Option<_>>()?;
    let first = match runs.as_slice() {
        [first] | [first, (1, _)] => *first,
        _ => return None,
    };
    let frames: u64 = runs.iter().map(|(count, _)| count).sum();
    let ticks: u64 = runs.iter().try_fold(0u64, |sum, (count, duration)| {
        sum.checked_add(count.checked_mul(*duration)?)
    })?;
    if first.1 == 0 || ticks == 0 || frames == 0 {
        return None;
    }
    Some(FrameRates {
        nominal: format!("{}/{}", scale, first.1),
        average: format!("{}/{}", u128::from(frames) * u128::from(scale), ticks),
        frames,
    })
}

/// The clockwise quarter turn of a track's matrix, as ffprobe's side data says it
/// (counter-clockwise degrees); None where the matrix is not a quarter turn; Some(None)
/// where it is none.
fn rotation(trak: &[u8]) -> Option<Option<i32>> {
    let tkhd = find(trak, &[b"tkhd"])?;
    let at = if *tkhd.first()? == 1 { 52 } else { 40 };
    let entry = |index: usize| u32_at(tkhd, at + 4 * index).map(|value| value as i32);
    let (a, b, c, d) = (entry(0)?, entry(1)?, entry(3)?, entry(4)?);
    // in 16.16 fixed point
    match (a >> 16, b >> 16, c >> 16, d >> 16) {
        _ if [a, b, c, d].iter().any(|value| value & 0xffff != 0) => None,
        (1, 0, 0, 1) => Some(None),
        (0, 1, -1, 0) => Some(Some(-90)),
        (-1, 0, 0, -1) => Some(Some(180)),
        (0, -1, 1, 0) => Some(Some(90)),
        _ => None,
    }
}

/// The object type of the `esds` box among `children` (a sample entry's boxes): which
/// codec an `mp4v` or `mp4a` entry holds.
fn object_type(children: &[u8]) -> Option<u8> {
    let esds = find(children, &[b"esds"])?.get(4..)?;
    // descriptors: a tag, a length in up to four bytes of seven bits
    let descriptor = |data: &[u8]| -> Option<(u8, usize)> {
        let tag = *data.first()?;
        let mut at = 1;
        while *data.get(at)? & 0x80 != 0 && at < 4 {
            at += 1;
        }
        Some((tag, at + 1))
    };
    let (tag, header) = descriptor(esds)?;
    if tag != 0x03 {
        return None;
    }
    let flags = *esds.get(header + 2)?;
    let mut at = header + 3;
    if flags & 0x80 != 0 {
        at += 2;
    }
    if flags & 0x40 != 0 {
        at += 1 + usize::from(*esds.get(at)?);
    }
    if flags & 0x20 != 0 {
        at += 2;
    }
    let (tag, header) = descriptor(esds.get(at..)?)?;
    (tag == 0x04).then_some(())?;
    esds.get(at + header).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sized(kind: &[u8; 4], content: &[u8]) -> Vec<u8> {
        let mut bytes = ((content.len() + 8) as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(kind);
        bytes.extend_from_slice(content);
        bytes
    }

    /// A moov with one video track: `stts` runs (count, duration), a `stsz` of `size`
    /// bytes each, `ctts` runs when given; timescale 12800, no edit list, no `stss`.
    fn moov(stts: &[(u32, u32)], size: u32, ctts: Option<&[(u32, i32)]>) -> Vec<u8> {
        let full = |entries: &[[u8; 8]]| {
            let mut content = vec![0u8; 4];
            content.extend((entries.len() as u32).to_be_bytes());
            entries.iter().for_each(|entry| content.extend(entry));
            content
        };
        let pair = |a: u32, b: u32| {
            let mut entry = [0u8; 8];
            entry[..4].copy_from_slice(&a.to_be_bytes());
            entry[4..].copy_from_slice(&b.to_be_bytes());
            entry
        };
        let count: u32 = stts.iter().map(|(count, _)| count).sum();
        let mut stbl = sized(
            b"stts",
            &full(&stts.iter().map(|(c, d)| pair(*c, *d)).collect::<Vec<_>>()),
        );
        let mut stsz = vec![0u8; 4];
        stsz.extend(size.to_be_bytes());
        stsz.extend(count.to_be_bytes());
        stbl.extend(sized(b"stsz", &stsz));
        if let Some(runs) = ctts {
            let entries: Vec<_> = runs.iter().map(|(c, o)| pair(*c, *o as u32)).collect();
            stbl.extend(sized(b"ctts", &full(&entries)));
        }
        let mut header = vec![0u8; 24];
        header[12..16].copy_from_slice(&12800u32.to_be_bytes());
        let mut hdlr = vec![0u8; 24];
        hdlr[8..12].copy_from_slice(b"vide");
        let minf = sized(b"minf", &sized(b"stbl", &stbl));
        let mdia = [sized(b"mdhd", &header), sized(b"hdlr", &hdlr), minf].concat();
        [
            sized(b"mvhd", &header),
            sized(b"trak", &sized(b"mdia", &mdia)),
        ]
        .concat()
    }

    #[test]
    fn sample_tables_are_read_only_as_far_as_the_file_holds_them() {
        let two_b_frames = [(1, 1024), (1, 0), (1, 0)];
        let listed = listing_in(&moov(&[(3, 512)], 100, Some(&two_b_frames)), 1000, 0, 1);
        let times: Vec<f64> = listed.unwrap().iter().map(|(time, _)| *time).collect();
        assert_eq!(times, vec![0.08, 0.04, 0.08]);
        // three samples of 100 bytes in a file of 200
        assert!(listing_in(&moov(&[(3, 512)], 100, None), 200, 0, 1).is_none());
        // more samples than read, whatever the file's length
        let many = moov(&[(MAX_SAMPLES as u32, 512), (1, 512)], 1, None);
        assert!(listing_in(&many, u64::MAX, 0, 1).is_none());
        // sizes in a table that is not there
        assert!(listing_in(&moov(&[(3, 512)], 0, None), 1000, 0, 1).is_none());
        // composition offsets for fewer samples than there are, or for more
        assert!(listing_in(&moov(&[(3, 512)], 1, Some(&[(2, 0)])), 1000, 0, 1).is_none());
        assert!(listing_in(&moov(&[(3, 512)], 1, Some(&[(4, 0)])), 1000, 0, 1).is_none());
        // another track than the first video one, or another count of streams
        assert!(listing_in(&moov(&[(3, 512)], 1, None), 1000, 1, 1).is_none());
        assert!(listing_in(&moov(&[(3, 512)], 1, None), 1000, 0, 2).is_none());
    }

    #[test]
    fn an_edit_list_shifting_times_past_the_clock_is_refused() {
        // a B-frame first (a composition before zero), then an empty edit as long as the
        // clock can count: the times it would give do not fit in it
        let index = moov(&[(3, 512)], 1, Some(&[(1, -512), (2, 0)]));
        let with_edits = |edits: &[(u64, i64)]| {
            let mut elst = vec![1u8, 0, 0, 0];
            elst.extend((edits.len() as u32).to_be_bytes());
            for (duration, media_time) in edits {
                elst.extend(duration.to_be_bytes());
                elst.extend(media_time.to_be_bytes());
                elst.extend(0x0001_0000u32.to_be_bytes());
            }
            let edts = sized(b"edts", &sized(b"elst", &elst));
            boxes(&index)
                .map(|(kind, content)| match kind {
                    b"trak" => sized(b"trak", &[edts.clone(), content.to_vec()].concat()),
                    kind => sized(kind.try_into().unwrap(), content),
                })
                .collect::<Vec<_>>()
                .concat()
        };
        let shifted = listing_in(&with_edits(&[(100, -1), (4096, -512)]), 1000, 0, 1).unwrap();
        assert_eq!(shifted[0].0, 100.0 / 12800.0);
        let past = with_edits(&[(i64::MAX as u64, -1), (4096, -512)]);
        assert!(listing_in(&past, 1000, 0, 1).is_none());
        read_untrusted(&past);
    }

    /// The stable twin of the fuzz target (`make fuzz`): indexes (made here, and those of
    /// ../shared/media when present) mutated the ways a damaged or hostile upload would be —
    /// bytes overwritten, lengths and counts set to the extremes, cut short, a stretch
    /// repeated — are read to the end without a panic or an overflow (tests run with
    /// overflow checks).
    #[test]
    fn mutated_indexes_are_read_without_panicking() {
        let mut seeds = vec![
            moov(&[(30, 512)], 1, None),
            moov(
                &[(3, 512), (1, 256)],
                1,
                Some(&[(1, 1024), (2, -512), (1, 0)]),
            ),
        ];
        let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/media");
        let clips: Vec<_> = std::fs::read_dir(&shared)
            .map(|dir| dir.flatten().map(|entry| entry.path()).collect())
            .unwrap_or_default();
        if clips.is_empty() {
            eprintln!("../shared/media is absent: only made indexes are mutated");
        }
        for clip in clips
            .iter()
            .filter(|clip| clip.extension().is_some_and(|e| e == "mp4"))
        {
            let mut file = std::fs::File::open(clip).unwrap();
            let length = file.metadata().unwrap().len();
            if let Some(index) = read_moov(&mut file, length) {
                seeds.push(index);
            }
        }
        // the made seeds are read whole: the mutations start from indexes that are
        assert!(seeds[..2]
            .iter()
            .all(|seed| listing_in(seed, 1 << 20, 0, 1).is_some()));
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move |below: usize| {
            // xorshift64*: the same mutations on every run
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as usize % below.max(1)
        };
        const EXTREMES: [u32; 9] = [
            0,
            1,
            2,
            8,
            16,
            0x7FFF_FFFF,
            0x8000_0000,
            0xFFFF_FFF8,
            u32::MAX,
        ];
        for seed in &seeds {
            read_untrusted(seed);
            for _ in 0..1000 {
                let mut file = seed.clone();
                for _ in 0..1 + next(4) {
                    let at = next(file.len());
                    match next(4) {
                        0 => {
                            if let Some(byte) = file.get_mut(at) {
                                *byte = next(256) as u8;
                            }
                        }
                        1 => {
                            let value = EXTREMES[next(EXTREMES.len())].to_be_bytes();
                            let end = (at + 4).min(file.len());
                            file[at..end].copy_from_slice(&value[..end - at]);
                        }
                        2 => file.truncate(at),
                        _ => {
                            let stretch = file[at..(at + 1 + next(64)).min(file.len())].to_vec();
                            let to = next(file.len() + 1);
                            file.splice(to..to, stretch);
                        }
                    }
                }
                // the index as a `moov`'s content, and inside a file, after a header box
                read_untrusted(&file);
                let mut whole = sized(b"ftyp", b"isom\0\0\0\0");
                whole.extend(sized(b"moov", &file));
                read_untrusted(&whole);
            }
        }
    }

    #[test]
    fn the_moov_is_found_after_other_boxes_but_not_after_too_many() {
        let file_of = |boxes: &[Vec<u8>]| {
            let mut file = tempfile::tempfile().unwrap();
            std::io::Write::write_all(&mut file, &boxes.concat()).unwrap();
            let length = file.metadata().unwrap().len();
            read_moov(&mut file, length)
        };
        let moov = sized(b"moov", b"index");
        let free = sized(b"free", &[]);
        let mut large = 1u32.to_be_bytes().to_vec();
        large.extend(b"mdat");
        large.extend(20u64.to_be_bytes());
        large.extend([0u8; 4]);
        assert_eq!(
            file_of(&[free.clone(), large, moov.clone()]).unwrap(),
            b"index"
        );
        let mut many = vec![free; MAX_TOP_BOXES];
        many.push(moov.clone());
        assert!(file_of(&many).is_none());
        // fragments before any index, or a box past the end of the file
        assert!(file_of(&[sized(b"moof", &[]), moov.clone()]).is_none());
        let mut cut = moov;
        cut.truncate(10);
        assert!(file_of(&[cut]).is_none());
    }

    #[test]
    fn boxes_that_overrun_their_parent_end_the_walk() {
        let mut data = sized(b"free", &[0; 4]);
        data.extend_from_slice(&200u32.to_be_bytes());
        data.extend_from_slice(b"moov");
        data.extend_from_slice(&[0; 12]);
        let kinds: Vec<&[u8]> = boxes(&data).map(|(kind, _)| kind).collect();
        assert_eq!(kinds, vec![&b"free"[..]]);
        assert!(find(&data, &[b"moov"]).is_none());
    }

    #[test]
    fn a_moov_without_a_video_track_or_with_fragments_lists_nothing() {
        let mvhd = sized(b"mvhd", &[0; 100]);
        assert!(listing_in(&mvhd, 1 << 20, 0, 1).is_none());
        let mut fragmented = mvhd.clone();
        fragmented.extend(sized(b"mvex", &[]));
        assert!(listing_in(&fragmented, 1 << 20, 0, 1).is_none());
        // a table claiming more entries than it holds
        assert!(table(&[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 1, 2], 8).is_none());
    }
}
