//! Grounding: turn what a model says about time into times the video really has.
//!
//! Vision-language models write times in many shapes (`"01:05"`, `"1:02:03"`, `65.5`,
//! `"1m05s"`, `"[00:12]"`, `"00:01:02,500"`, `"T+12s"`, ...), and they are often wrong:
//! `"5:70"`, negative numbers, times after the end of the video, an end before its start.
//! The local analyzer knows the exact duration and the shot boundaries, so every time a
//! model gives is read here ([`parse_timestamp`], [`parse_time`]), clamped to the video
//! ([`Grounder::ground_ranges`]) and, for chapters, moved onto the nearest cut
//! ([`Grounder::ground_chapters`]). Everything that is changed or dropped leaves a short
//! human warning.
//!
//! The functions work on `serde_json::Value`, so they fit every feature (labels, on-screen
//! text, moderation flags, transcript segments, user-defined shapes) without a type each.

use serde_json::{Map, Value};

/// How far (in seconds) a point event may lie outside the video and still be kept
/// (clamped onto the video) rather than dropped: models round the last second up.
const POINT_SLACK_SECONDS: f64 = 1.0;

/// Chapters shorter than this (in seconds, after snapping) are merged into a neighbour.
const MIN_CHAPTER_SECONDS: f64 = 1.0;

/// Field names, besides the caller's own keys, that models use for a range's start.
const START_ALIASES: [&str; 4] = ["start", "start_time", "startTime", "from"];
/// Field names, besides the caller's own keys, that models use for a range's end.
const END_ALIASES: [&str; 4] = ["end", "end_time", "endTime", "to"];
/// Field names models use for a point event (no end).
const POINT_ALIASES: [&str; 2] = ["timestamp", "time"];
/// Fields that name an item in warnings, first match wins.
const NAME_FIELDS: [&str; 7] = [
    "title",
    "label",
    "name",
    "text",
    "description",
    "summary",
    "category",
];

/// Reads a time written by a model and returns it in seconds.
///
/// Accepted, with surrounding whitespace, brackets (`[]`, `()`, `<>`), quotes, a leading
/// `at`, `T+`, `t=` or `~` ignored, case-insensitively:
/// - colon forms `H:MM:SS`, `MM:SS`, each optionally with a fraction after `.` or `,`
///   (`00:01:02.500`, SRT's `00:01:02,500`). The leading field is unbounded (`95:00` is
///   95 minutes); the later fields must have exactly two digits and be below 60, so
///   `5:70` and `1:5` are **rejected** (a model that writes them has lost track of time,
///   and guessing would invent a moment). Four fields (`HH:MM:SS:FF` frame timecode) are
///   rejected: the frame rate is unknown.
/// - bare seconds: `65`, `65.5`, `.5`.
/// - unit forms: `90s`, `1m05s`, `1h2m3.5s`, `1.5 min`, `2 minutes 5 seconds`, `500ms`,
///   ISO 8601 `PT1M5S`. Units must go from large to small, each at most once; a
///   component after a larger unit must be below 60 (`1m75s` is rejected).
///
/// Rejected: empty text, negative numbers, `NaN`/`inf`, exponents, anything else.
pub fn parse_timestamp(text: &str) -> Option<f64> {
    let core = strip_decorations(text)?;
    let seconds = if core.contains(':') {
        parse_colon_form(&core)?
    } else if let Some(value) = parse_decimal(&core) {
        value
    } else {
        parse_unit_form(&core)?
    };
    (seconds.is_finite() && seconds >= 0.0).then_some(seconds)
}

/// Reads a JSON time: a number of seconds, or a string read by [`parse_timestamp`].
/// Negative, non-finite and other values give `None`.
pub fn parse_time(value: &Value) -> Option<f64> {
    match value {
        Value::Number(number) => number
            .as_f64()
            .filter(|seconds| seconds.is_finite() && *seconds >= 0.0),
        Value::String(text) => parse_timestamp(text),
        _ => None,
    }
}

/// Like [`parse_time`] but keeps a sign, so that grounding can tell "before the video"
/// (clamp or drop) from "unreadable".
fn parse_signed_time(value: &Value) -> Option<f64> {
    match value {
        Value::Number(number) => number.as_f64().filter(|seconds| seconds.is_finite()),
        Value::String(text) => {
            let trimmed = text.trim();
            match trimmed.strip_prefix('-') {
                Some(rest) => parse_timestamp(rest).map(|seconds| -seconds),
                None => parse_timestamp(trimmed),
            }
        }
        _ => None,
    }
}

/// Reads `"00:12 - 00:15"`, `"0:12–0:15"` or `"12s to 15s"`: models often put a whole range
/// into one `timestamp` field.
fn parse_range_text(text: &str) -> Option<(f64, f64)> {
    let separators = [" to ", "–", "—", "-"];
    separators.iter().find_map(|separator| {
        let (left, right) = text.split_once(separator)?;
        Some((parse_timestamp(left)?, parse_timestamp(right)?))
    })
}

/// Lower-cases `text` and removes what surrounds the time itself.
fn strip_decorations(text: &str) -> Option<String> {
    let mut core = text.trim().to_ascii_lowercase();
    loop {
        let before = core.len();
        core = core.trim().to_string();
        for (open, close) in [('[', ']'), ('(', ')'), ('<', '>'), ('"', '"'), ('\'', '\'')] {
            if core.len() >= 2 && core.starts_with(open) && core.ends_with(close) {
                core = core[1..core.len() - 1].to_string();
            }
        }
        for prefix in ["at ", "t+", "t=", "~"] {
            if let Some(rest) = core.strip_prefix(prefix) {
                core = rest.to_string();
            }
        }
        if core.len() == before {
            break;
        }
    }
    (!core.is_empty()).then_some(core)
}

/// `digits` with an optional `.fraction` (or a bare `.fraction`); no sign, no exponent.
fn parse_decimal(text: &str) -> Option<f64> {
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (text, None),
    };
    let whole_ok = whole.bytes().all(|byte| byte.is_ascii_digit());
    let fraction_ok = match fraction {
        None => true,
        Some(digits) => !digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit()),
    };
    let has_digits = !whole.is_empty() || fraction.is_some();
    if !(whole_ok && fraction_ok && has_digits) {
        return None;
    }
    text.parse::<f64>().ok()
}

/// `H:MM:SS(.fff|,fff)` or `M:SS(.fff|,fff)`.
fn parse_colon_form(text: &str) -> Option<f64> {
    let fields: Vec<&str> = text.split(':').map(str::trim).collect();
    if fields.len() < 2 || fields.len() > 3 {
        return None;
    }
    let last = fields[fields.len() - 1];
    let (seconds_text, fraction) = match last.find(['.', ',']) {
        Some(index) => (&last[..index], Some(&last[index + 1..])),
        None => (last, None),
    };
    let seconds_whole = two_digit_field(seconds_text)?;
    let fraction_value = match fraction {
        None => 0.0,
        Some(digits) => {
            if digits.is_empty()
                || digits.len() > 9
                || !digits.bytes().all(|byte| byte.is_ascii_digit())
            {
                return None;
            }
            format!("0.{digits}").parse::<f64>().ok()?
        }
    };
    let leading = fields[0];
    if leading.is_empty() || leading.len() > 9 || !leading.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let leading_value: f64 = leading.parse().ok()?;
    let total = if fields.len() == 3 {
        let minutes = two_digit_field(fields[1])?;
        leading_value * 3600.0 + minutes * 60.0 + seconds_whole
    } else {
        leading_value * 60.0 + seconds_whole
    };
    Some(total + fraction_value)
}

/// Exactly two digits, below 60.
fn two_digit_field(text: &str) -> Option<f64> {
    if text.len() != 2 || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let value: u32 = text.parse().ok()?;
    (value < 60).then_some(f64::from(value))
}

/// `1h2m3.5s`, `90s`, `1.5 min`, `2 minutes 5 seconds`, `500ms`, `pt1m5s`.
fn parse_unit_form(text: &str) -> Option<f64> {
    let body = text.strip_prefix("pt").unwrap_or(text);
    let bytes = body.as_bytes();
    let mut index = 0;
    let mut total = 0.0;
    // rank of the last unit seen: 4 hours, 3 minutes, 2 seconds, 1 milliseconds
    let mut last_rank = u8::MAX;
    let mut components = 0;
    while index < bytes.len() {
        while index < bytes.len() && bytes[index] == b' ' {
            index += 1;
        }
        if index == bytes.len() {
            break;
        }
        let number_start = index;
        while index < bytes.len() && (bytes[index].is_ascii_digit() || bytes[index] == b'.') {
            index += 1;
        }
        let value = parse_decimal(&body[number_start..index])?;
        while index < bytes.len() && bytes[index] == b' ' {
            index += 1;
        }
        let unit_start = index;
        while index < bytes.len() && bytes[index].is_ascii_alphabetic() {
            index += 1;
        }
        let (rank, scale) = match &body[unit_start..index] {
            "h" | "hr" | "hrs" | "hour" | "hours" => (4, 3600.0),
            "m" | "min" | "mins" | "minute" | "minutes" => (3, 60.0),
            "s" | "sec" | "secs" | "second" | "seconds" => (2, 1.0),
            "ms" | "msec" | "millisecond" | "milliseconds" => (1, 0.001),
            _ => return None,
        };
        if rank >= last_rank {
            return None;
        }
        // a component after a larger one must stay inside its field (1m75s is garbage)
        let limit = if rank == 1 { 1000.0 } else { 60.0 };
        if components > 0 && value >= limit {
            return None;
        }
        last_rank = rank;
        components += 1;
        total += value * scale;
    }
    (components > 0).then_some(total)
}

/// The result of grounding: the items that survived, rewritten, and what was changed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Grounded {
    pub items: Vec<Value>,
    pub warnings: Vec<String>,
}

/// What the local analyzer knows about a video's time: its duration and its cuts.
#[derive(Debug, Clone, PartialEq)]
pub struct Grounder {
    duration: f64,
    boundaries: Vec<f64>,
    snap_tolerance: f64,
}

/// One item's times as read, before clamping.
struct ReadTimes {
    start: f64,
    end: f64,
    /// true when the item is a point event (no end given)
    point: bool,
    /// the time as the model wrote it, for warnings
    raw: String,
}

impl Grounder {
    /// `duration` in seconds (a non-finite or negative one is taken as 0, which drops
    /// everything); `boundaries` are the shot cuts in seconds: they are sorted, those
    /// within a millisecond of each other merged, and those outside `(0, duration)` dropped;
    /// `snap_tolerance` is how far (seconds) a chapter start may move onto a cut.
    pub fn new(duration: f64, boundaries: Vec<f64>, snap_tolerance: f64) -> Self {
        let duration = if duration.is_finite() && duration > 0.0 {
            duration
        } else {
            0.0
        };
        let snap_tolerance = if snap_tolerance.is_finite() && snap_tolerance > 0.0 {
            snap_tolerance
        } else {
            0.0
        };
        let mut boundaries: Vec<f64> = boundaries
            .into_iter()
            .filter(|cut| cut.is_finite() && *cut > 0.0 && *cut < duration)
            .collect();
        boundaries.sort_by(f64::total_cmp);
        boundaries.dedup_by(|later, earlier| (*later - *earlier).abs() < 0.001);
        Self {
            duration,
            boundaries,
            snap_tolerance,
        }
    }

    /// The video's duration in seconds.
    pub fn duration(&self) -> f64 {
        self.duration
    }

    /// The shot boundaries kept by [`Grounder::new`], sorted.
    pub fn boundaries(&self) -> &[f64] {
        &self.boundaries
    }

    /// The nearest shot boundary within the tolerance (and `true`), else `t` unchanged (and
    /// `false`). At equal distance the earlier boundary wins.
    pub fn snap(&self, t: f64) -> (f64, bool) {
        if !t.is_finite() || self.boundaries.is_empty() {
            return (t, false);
        }
        let after = self.boundaries.partition_point(|cut| *cut < t);
        let candidates = [after.checked_sub(1), Some(after)];
        let nearest = candidates
            .into_iter()
            .flatten()
            .filter_map(|index| self.boundaries.get(index).copied())
            .min_by(|left, right| (left - t).abs().total_cmp(&(right - t).abs()));
        match nearest {
            Some(cut) if (cut - t).abs() <= self.snap_tolerance => (cut, true),
            _ => (t, false),
        }
    }

    /// Grounds items that each have a time range (labels, on-screen text, moderation flags,
    /// transcript segments).
    ///
    /// Each item must be a JSON object. Its start is read from `start_key` or one of
    /// `start`, `start_time`, `startTime`, `from`; its end from `end_key` or `end`,
    /// `end_time`, `endTime`, `to`. An item with no start but a `timestamp` or `time` is a
    /// point event: its end is its start (no span is invented; a `timestamp` holding a
    /// range such as `"00:12-00:15"` is read as that range).
    ///
    /// - unreadable time, or no time at all: dropped (warning);
    /// - end before start: swapped (warning);
    /// - a range wholly outside `[0, duration]` (including one that would shrink to nothing,
    ///   e.g. starting exactly at the end): dropped (warning); partly outside: clamped
    ///   (warning);
    /// - a point event up to 1 s outside the video: clamped (warning); further: dropped.
    ///
    /// The output objects have numeric `start` and `end` first (seconds, rounded to
    /// milliseconds, never past the duration), then every other field in its original order;
    /// the time fields that were read (the keys and aliases) are removed. They are sorted by
    /// start, then end.
    pub fn ground_ranges(&self, items: Vec<Value>, start_key: &str, end_key: &str) -> Grounded {
        let mut grounded = Grounded::default();
        let mut kept: Vec<(f64, f64, Value)> = Vec::new();
        for (index, item) in items.into_iter().enumerate() {
            let Value::Object(fields) = item else {
                grounded
                    .warnings
                    .push(format!("dropped item {}: not a JSON object", index + 1));
                continue;
            };
            let name = describe("item", index, &fields);
            let Some(times) = self.read_times(&fields, start_key, end_key, &name, &mut grounded)
            else {
                continue;
            };
            let Some((start, end)) = self.clamp(&times, &name, &mut grounded.warnings) else {
                continue;
            };
            let start = self.round_within(start);
            let end = self.round_within(end).max(start);
            let object = rewrite(
                fields,
                start_key,
                end_key,
                &[("start", start), ("end", end)],
            );
            kept.push((start, end, object));
        }
        kept.sort_by(|left, right| {
            left.0
                .total_cmp(&right.0)
                .then_with(|| left.1.total_cmp(&right.1))
        });
        grounded.items = kept.into_iter().map(|(_, _, object)| object).collect();
        grounded
    }

    /// Grounds chapters: only each chapter's start counts (read like
    /// [`Grounder::ground_ranges`]; an end the model gave is ignored except that an item
    /// whose end is before its start uses the earlier time).
    ///
    /// Then: chapters are sorted by start; each start is moved to the nearest shot boundary
    /// within the tolerance (`"snapped": true`) and the first chapter starts at 0 (its
    /// `snapped` is `false`: the video's start is not a detected cut; a warning says so when
    /// it moved by more than the tolerance); chapters that end up at the same start as an
    /// earlier one are dropped (the earlier one is kept); the chapters are made contiguous
    /// (each ends where the next starts, the last at the duration); chapters shorter than
    /// 1 s are merged into their neighbour (the short chapter's own fields are dropped; the
    /// previous chapter grows over it, or for the first chapter the next one starts at 0).
    /// Every drop, merge, swap and move to 0 leaves a warning; a snap only sets `snapped`.
    /// The output objects have `start`, `end`, the model's other fields in order, then
    /// `snapped`. With a zero duration nothing is kept.
    pub fn ground_chapters(&self, items: Vec<Value>) -> Grounded {
        let mut grounded = Grounded::default();
        let mut chapters: Vec<Chapter> = Vec::new();
        for (index, item) in items.into_iter().enumerate() {
            let Value::Object(fields) = item else {
                grounded
                    .warnings
                    .push(format!("dropped chapter {}: not a JSON object", index + 1));
                continue;
            };
            let name = describe("chapter", index, &fields);
            let Some(times) = self.read_times(&fields, "start", "end", &name, &mut grounded) else {
                continue;
            };
            // read_times has already put an end before its start first
            let start = times.start;
            if start < 0.0 {
                grounded.warnings.push(format!(
                    "moved {name} from {} to the start of the video",
                    times.raw
                ));
            } else if start >= self.duration {
                grounded.warnings.push(format!(
                    "dropped {name} at {}: after the end of the video ({})",
                    times.raw,
                    seconds_text(self.duration)
                ));
                continue;
            }
            let (snapped_start, snapped) = self.snap(start.max(0.0));
            chapters.push(Chapter {
                start: snapped_start,
                snapped,
                name,
                fields,
            });
        }
        chapters.sort_by(|left, right| left.start.total_cmp(&right.start));

        if let Some(first) = chapters.first_mut() {
            if first.start > self.snap_tolerance.max(0.001) {
                grounded.warnings.push(format!(
                    "moved {} from {} to the start of the video",
                    first.name,
                    seconds_text(first.start)
                ));
            }
            first.start = 0.0;
            first.snapped = false;
        }

        let mut distinct: Vec<Chapter> = Vec::with_capacity(chapters.len());
        for chapter in chapters {
            match distinct.last() {
                Some(previous) if chapter.start - previous.start < 0.001 => {
                    grounded.warnings.push(format!(
                        "dropped {}: it starts at the same time as {} ({})",
                        chapter.name,
                        previous.name,
                        seconds_text(previous.start)
                    ));
                }
                _ => distinct.push(chapter),
            }
        }

        self.merge_short_chapters(&mut distinct, &mut grounded.warnings);

        let starts: Vec<f64> = distinct
            .iter()
            .map(|chapter| self.round_within(chapter.start))
            .collect();
        let end_of_video = self.round_within(self.duration);
        grounded.items = distinct
            .into_iter()
            .enumerate()
            .map(|(index, chapter)| {
                let start = starts[index];
                let end = starts.get(index + 1).copied().unwrap_or(end_of_video);
                let mut object = rewrite(
                    chapter.fields,
                    "start",
                    "end",
                    &[("start", start), ("end", end)],
                );
                if let Value::Object(map) = &mut object {
                    map.shift_remove("snapped");
                    map.insert("snapped".to_string(), Value::Bool(chapter.snapped));
                }
                object
            })
            .collect();
        grounded
    }

    /// Drops chapters shorter than [`MIN_CHAPTER_SECONDS`], the shortest first, until none is
    /// left (or one chapter remains).
    fn merge_short_chapters(&self, chapters: &mut Vec<Chapter>, warnings: &mut Vec<String>) {
        loop {
            if chapters.len() < 2 {
                return;
            }
            let lengths: Vec<f64> = (0..chapters.len())
                .map(|index| {
                    let end = chapters
                        .get(index + 1)
                        .map_or(self.duration, |next| next.start);
                    end - chapters[index].start
                })
                .collect();
            let shortest = lengths
                .iter()
                .enumerate()
                .min_by(|left, right| left.1.total_cmp(right.1))
                .map(|(index, length)| (index, *length));
            let Some((index, length)) = shortest else {
                return;
            };
            if length >= MIN_CHAPTER_SECONDS {
                return;
            }
            let removed = chapters.remove(index);
            if index == 0 {
                let next = &mut chapters[0];
                warnings.push(format!(
                    "merged {} ({} long) into {}, which now starts at 0",
                    removed.name,
                    seconds_text(length),
                    next.name
                ));
                next.start = 0.0;
                next.snapped = false;
            } else {
                warnings.push(format!(
                    "merged {} at {} ({} long) into {}",
                    removed.name,
                    seconds_text(removed.start),
                    seconds_text(length),
                    chapters[index - 1].name
                ));
            }
        }
    }

    /// Reads an item's times; a warning and `None` when they cannot be read.
    fn read_times(
        &self,
        fields: &Map<String, Value>,
        start_key: &str,
        end_key: &str,
        name: &str,
        grounded: &mut Grounded,
    ) -> Option<ReadTimes> {
        let start_field = find_field(fields, start_key, &START_ALIASES);
        let end_field = find_field(fields, end_key, &END_ALIASES);
        let point_field = POINT_ALIASES
            .iter()
            .find_map(|key| fields.get(*key).filter(|value| !value.is_null()));

        let Some(start_value) = start_field.or(point_field) else {
            grounded
                .warnings
                .push(format!("dropped {name}: it has no time"));
            return None;
        };
        let raw = raw_text(start_value);
        let Some(start) = parse_signed_time(start_value) else {
            // a point field holding a whole range: "00:12 - 00:15"
            if start_field.is_none() {
                if let Some((start, end)) = start_value.as_str().and_then(parse_range_text) {
                    return Some(ordered(start, end, raw, name, grounded));
                }
            }
            grounded
                .warnings
                .push(format!("dropped {name}: cannot read the time {raw}"));
            return None;
        };
        let Some(end_value) = end_field else {
            return Some(ReadTimes {
                start,
                end: start,
                point: true,
                raw,
            });
        };
        let Some(end) = parse_signed_time(end_value) else {
            grounded.warnings.push(format!(
                "dropped {name} at {raw}: cannot read its end time {}",
                raw_text(end_value)
            ));
            return None;
        };
        Some(ordered(start, end, raw, name, grounded))
    }

    /// Clamps the times onto the video, or drops the item (a warning either way).
    fn clamp(
        &self,
        times: &ReadTimes,
        name: &str,
        warnings: &mut Vec<String>,
    ) -> Option<(f64, f64)> {
        let duration = self.duration;
        let video = seconds_text(duration);
        if times.point {
            let at = times.start;
            if at < -POINT_SLACK_SECONDS {
                warnings.push(format!(
                    "dropped {name} at {}: before the start of the video",
                    times.raw
                ));
                return None;
            }
            if at > duration + POINT_SLACK_SECONDS || (duration == 0.0 && at > 0.0) {
                warnings.push(format!(
                    "dropped {name} at {}: after the end of the video ({video})",
                    times.raw
                ));
                return None;
            }
            let clamped = at.clamp(0.0, duration);
            if clamped != at {
                warnings.push(format!(
                    "moved {name} from {} to {}: it was just outside the video ({video})",
                    times.raw,
                    seconds_text(clamped)
                ));
            }
            return Some((clamped, clamped));
        }
        let zero_length = times.end == times.start;
        if times.start > duration || (!zero_length && times.start >= duration) {
            warnings.push(format!(
                "dropped {name} at {}: after the end of the video ({video})",
                times.raw
            ));
            return None;
        }
        if times.end < 0.0 || (!zero_length && times.end <= 0.0) {
            warnings.push(format!(
                "dropped {name} at {}: before the start of the video",
                times.raw
            ));
            return None;
        }
        let start = times.start.max(0.0);
        let end = times.end.min(duration);
        if start != times.start {
            warnings.push(format!(
                "clamped the start of {name} from {} to 0",
                seconds_text(times.start)
            ));
        }
        if end != times.end {
            warnings.push(format!(
                "clamped the end of {name} from {} to the end of the video ({video})",
                seconds_text(times.end)
            ));
        }
        Some((start, end))
    }

    /// Rounds to milliseconds without ever passing the duration.
    fn round_within(&self, seconds: f64) -> f64 {
        let rounded = round_ms(seconds);
        if rounded > self.duration {
            (self.duration * 1000.0).floor() / 1000.0
        } else {
            rounded.max(0.0)
        }
    }
}

/// Swaps an end before its start (with a warning).
fn ordered(start: f64, end: f64, raw: String, name: &str, grounded: &mut Grounded) -> ReadTimes {
    let (start, end) = if end < start {
        grounded.warnings.push(format!(
            "swapped the start and end of {name}: it ended ({}) before it started ({})",
            seconds_text(end),
            seconds_text(start)
        ));
        (end, start)
    } else {
        (start, end)
    };
    ReadTimes {
        start,
        end,
        point: false,
        raw,
    }
}

/// A chapter while it is being grounded.
struct Chapter {
    start: f64,
    snapped: bool,
    name: String,
    fields: Map<String, Value>,
}

fn round_ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

/// The first non-null field among `key` and `aliases`.
fn find_field<'a>(
    fields: &'a Map<String, Value>,
    key: &str,
    aliases: &[&str],
) -> Option<&'a Value> {
    std::iter::once(key)
        .chain(aliases.iter().copied())
        .find_map(|name| fields.get(name).filter(|value| !value.is_null()))
}

/// `start` and `end` first, then the other fields in order, without any time field read.
fn rewrite(
    fields: Map<String, Value>,
    start_key: &str,
    end_key: &str,
    times: &[(&str, f64)],
) -> Value {
    let time_keys: Vec<&str> = [start_key, end_key]
        .into_iter()
        .chain(START_ALIASES)
        .chain(END_ALIASES)
        .chain(POINT_ALIASES)
        .collect();
    let mut object = Map::with_capacity(fields.len() + times.len());
    for (key, seconds) in times {
        object.insert((*key).to_string(), seconds_value(*seconds));
    }
    for (key, value) in fields {
        if !time_keys.contains(&key.as_str()) {
            object.insert(key, value);
        }
    }
    Value::Object(object)
}

/// Seconds as a JSON number; whole seconds stay floats (`12.0`) so the type is stable.
fn seconds_value(seconds: f64) -> Value {
    serde_json::Number::from_f64(seconds).map_or(Value::Null, Value::Number)
}

/// `item 3 ("Goal scored")` or `item 3`.
fn describe(noun: &str, index: usize, fields: &Map<String, Value>) -> String {
    let name = NAME_FIELDS
        .iter()
        .find_map(|key| fields.get(*key).and_then(Value::as_str))
        .map(str::trim)
        .filter(|text| !text.is_empty());
    match name {
        Some(text) => {
            let mut short: String = text.chars().take(40).collect();
            if short.len() < text.len() {
                short.push('…');
            }
            format!("{noun} {} (\"{short}\")", index + 1)
        }
        None => format!("{noun} {}", index + 1),
    }
}

/// The time as the model wrote it.
fn raw_text(value: &Value) -> String {
    match value {
        Value::String(text) => {
            let short: String = text.trim().chars().take(40).collect();
            format!("\"{short}\"")
        }
        other => {
            let text = other.to_string();
            text.chars().take(40).collect()
        }
    }
}

/// `61.2 s`, `65 s`, `0.125 s`.
fn seconds_text(seconds: f64) -> String {
    let text = format!("{:.3}", round_ms(seconds));
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text} s")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn close(left: f64, right: f64) -> bool {
        (left - right).abs() < 1e-9
    }

    #[test]
    fn parse_timestamp_reads_every_format_models_write() {
        let cases: &[(&str, f64)] = &[
            ("01:05", 65.0),
            ("1:05", 65.0),
            ("95:00", 5700.0),
            ("1:02:03", 3723.0),
            ("01:02:03", 3723.0),
            ("00:01:02,500", 62.5),
            ("00:01:02.500", 62.5),
            ("01:02.25", 62.25),
            ("65", 65.0),
            ("65.5", 65.5),
            (".5", 0.5),
            ("0", 0.0),
            ("65s", 65.0),
            ("65 s", 65.0),
            ("1m05s", 65.0),
            ("1m5s", 65.0),
            ("1h2m3.5s", 3723.5),
            ("1h", 3600.0),
            ("90s", 90.0),
            ("90 sec", 90.0),
            ("1.5 min", 90.0),
            ("2 minutes 5 seconds", 125.0),
            ("1 hour 2 minutes", 3720.0),
            ("500ms", 0.5),
            ("1s 250ms", 1.25),
            ("PT1M5S", 65.0),
            ("pt1h", 3600.0),
            ("[00:12]", 12.0),
            ("(00:12)", 12.0),
            ("<00:12>", 12.0),
            ("  00:12  ", 12.0),
            ("\"00:12\"", 12.0),
            ("at 01:05", 65.0),
            ("At 1:05", 65.0),
            ("T+12s", 12.0),
            ("t+12", 12.0),
            ("t=12.5", 12.5),
            ("~30s", 30.0),
            ("[at 00:12]", 12.0),
            ("00:00", 0.0),
            ("100:00:00", 360000.0),
            ("00:59:59.999", 3599.999),
        ];
        for (text, expected) in cases {
            let parsed = parse_timestamp(text);
            assert!(
                parsed.is_some_and(|seconds| close(seconds, *expected)),
                "{text:?} gave {parsed:?}, expected {expected}"
            );
        }
    }

    #[test]
    fn parse_timestamp_rejects_garbage_and_impossible_times() {
        let cases = [
            "",
            "   ",
            "[]",
            "abc",
            "NaN",
            "nan",
            "inf",
            "infinity",
            "-5",
            "-00:05",
            "1e3",
            "5:70",
            "1:60:00",
            "00:00:60",
            "1:5",
            "1:2:3",
            "00:01:02:15",
            ":30",
            "1:",
            "1::30",
            "00:01:02.",
            "00:01:02,5x",
            "1m75s",
            "1s2m",
            "1m1m",
            "5 parsecs",
            "5 s s",
            "1.2.3",
            "65,5",
            "+5",
            "12 apples",
            "00:12 - 00:15",
            "ms",
            "s",
        ];
        for text in cases {
            assert_eq!(parse_timestamp(text), None, "{text:?} should be rejected");
        }
    }

    #[test]
    fn parse_time_reads_numbers_and_strings() {
        assert_eq!(parse_time(&json!(65)), Some(65.0));
        assert_eq!(parse_time(&json!(65.5)), Some(65.5));
        assert_eq!(parse_time(&json!("01:05")), Some(65.0));
        assert_eq!(parse_time(&json!(-1)), None);
        assert_eq!(parse_time(&json!(-0.5)), None);
        assert_eq!(parse_time(&json!(null)), None);
        assert_eq!(parse_time(&json!(true)), None);
        assert_eq!(parse_time(&json!({"seconds": 3})), None);
        assert_eq!(parse_time(&json!([1])), None);
    }

    #[test]
    fn parse_range_text_splits_one_field_ranges() {
        assert_eq!(parse_range_text("00:12 - 00:15"), Some((12.0, 15.0)));
        assert_eq!(parse_range_text("0:12–0:15"), Some((12.0, 15.0)));
        assert_eq!(parse_range_text("12s to 15s"), Some((12.0, 15.0)));
        assert_eq!(parse_range_text("00:12"), None);
    }

    #[test]
    fn new_cleans_boundaries_and_bad_numbers() {
        let grounder = Grounder::new(
            60.0,
            vec![
                30.0,
                10.0,
                0.0,
                60.0,
                75.0,
                -3.0,
                10.0,
                10.0004,
                f64::NAN,
                45.5,
            ],
            0.5,
        );
        assert_eq!(grounder.boundaries(), &[10.0, 30.0, 45.5]);
        assert_eq!(grounder.duration(), 60.0);
        let broken = Grounder::new(f64::NAN, vec![1.0], f64::INFINITY);
        assert_eq!(broken.duration(), 0.0);
        assert!(broken.boundaries().is_empty());
        assert_eq!(broken.snap(1.0), (1.0, false));
    }

    #[test]
    fn snap_moves_to_the_nearest_boundary_within_tolerance() {
        let grounder = Grounder::new(60.0, vec![10.0, 12.0, 30.0], 0.75);
        assert_eq!(grounder.snap(10.5), (10.0, true));
        assert_eq!(grounder.snap(11.6), (12.0, true));
        assert_eq!(grounder.snap(11.0), (11.0, false), "both cuts are 1 s away");
        let wider = Grounder::new(60.0, vec![10.0, 12.0, 30.0], 1.0);
        assert_eq!(
            wider.snap(11.0),
            (10.0, true),
            "a tie goes to the earlier cut"
        );
        assert_eq!(grounder.snap(29.25), (30.0, true));
        assert_eq!(grounder.snap(20.0), (20.0, false));
        assert_eq!(grounder.snap(0.1), (0.1, false));
        assert_eq!(grounder.snap(59.0), (59.0, false));
        assert_eq!(grounder.snap(30.0), (30.0, true));
        let without_cuts = Grounder::new(60.0, Vec::new(), 2.0);
        assert_eq!(without_cuts.snap(10.0), (10.0, false));
    }

    fn grounder() -> Grounder {
        Grounder::new(61.2, vec![5.0, 12.4, 30.0, 44.8, 60.5], 1.0)
    }

    #[test]
    fn ground_ranges_reads_aliases_and_keeps_other_fields() {
        let items = vec![
            json!({"label": "dog", "start": "00:10", "end": "00:12.5", "confidence": 0.9}),
            json!({"label": "cat", "start_time": 3, "end_time": "4s"}),
            json!({"label": "car", "from": "[00:20]", "to": "00:25"}),
            json!({"label": "bus", "startTime": 1.25, "endTime": 2}),
            json!({"label": "flash", "timestamp": "00:30"}),
            json!({"label": "bang", "time": 31}),
            json!({"label": "wave", "timestamp": "00:40 - 00:42"}),
        ];
        let grounded = grounder().ground_ranges(items, "start", "end");
        assert!(grounded.warnings.is_empty(), "{:?}", grounded.warnings);
        let expected = vec![
            json!({"start": 1.25, "end": 2.0, "label": "bus"}),
            json!({"start": 3.0, "end": 4.0, "label": "cat"}),
            json!({"start": 10.0, "end": 12.5, "label": "dog", "confidence": 0.9}),
            json!({"start": 20.0, "end": 25.0, "label": "car"}),
            json!({"start": 30.0, "end": 30.0, "label": "flash"}),
            json!({"start": 31.0, "end": 31.0, "label": "bang"}),
            json!({"start": 40.0, "end": 42.0, "label": "wave"}),
        ];
        assert_eq!(grounded.items, expected);
        let keys: Vec<&String> = grounded.items[2].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["start", "end", "label", "confidence"]);
    }

    #[test]
    fn ground_ranges_uses_the_callers_keys_first() {
        let items = vec![json!({"text": "hi", "begin": "0:01", "finish": "0:02", "start": 50})];
        let grounded = grounder().ground_ranges(items, "begin", "finish");
        assert_eq!(
            grounded.items,
            vec![json!({"start": 1.0, "end": 2.0, "text": "hi"})]
        );
    }

    #[test]
    fn ground_ranges_drops_clamps_and_swaps_with_warnings() {
        let items = vec![
            json!({"label": "late", "start": "95:00", "end": "96:00"}),
            json!({"label": "garbage", "start": "soon", "end": "later"}),
            json!({"label": "no time"}),
            json!({"label": "bad end", "start": 3, "end": "5:70"}),
            json!({"label": "overhang", "start": "01:00", "end": "01:05"}),
            json!({"label": "early", "start": -2, "end": 3}),
            json!({"label": "backwards", "start": 20, "end": 10}),
            json!({"label": "before", "start": -5, "end": -1}),
            json!({"label": "point late", "timestamp": "01:01.9"}),
            json!({"label": "point far", "timestamp": "01:30"}),
            json!({"label": "at end", "start": 61.2, "end": 70}),
            json!("not an object"),
        ];
        let grounded = grounder().ground_ranges(items, "start", "end");
        let labels: Vec<&str> = grounded
            .items
            .iter()
            .map(|item| item["label"].as_str().unwrap())
            .collect();
        assert_eq!(labels, ["early", "backwards", "overhang", "point late"]);
        assert_eq!(grounded.items[0]["start"], json!(0.0));
        assert_eq!(grounded.items[0]["end"], json!(3.0));
        assert_eq!(grounded.items[1]["start"], json!(10.0));
        assert_eq!(grounded.items[1]["end"], json!(20.0));
        assert_eq!(grounded.items[2]["end"], json!(61.2));
        assert_eq!(grounded.items[3]["start"], json!(61.2));
        let warnings = grounded.warnings.join("\n");
        for expected in [
            "dropped item 1 (\"late\") at \"95:00\": after the end of the video (61.2 s)",
            "dropped item 2 (\"garbage\"): cannot read the time \"soon\"",
            "dropped item 3 (\"no time\"): it has no time",
            "dropped item 4 (\"bad end\") at 3: cannot read its end time \"5:70\"",
            "clamped the end of item 5 (\"overhang\") from 65 s to the end of the video (61.2 s)",
            "clamped the start of item 6 (\"early\") from -2 s to 0",
            "swapped the start and end of item 7 (\"backwards\")",
            "dropped item 8 (\"before\") at -5: before the start of the video",
            "moved item 9 (\"point late\") from \"01:01.9\" to 61.2 s",
            "dropped item 10 (\"point far\") at \"01:30\": after the end of the video",
            "dropped item 11 (\"at end\") at 61.2: after the end of the video",
            "dropped item 12: not a JSON object",
        ] {
            assert!(
                warnings.contains(expected),
                "missing {expected:?} in\n{warnings}"
            );
        }
        assert_eq!(grounded.warnings.len(), 12, "{warnings}");
    }

    #[test]
    fn ground_ranges_rounds_to_milliseconds_within_the_video() {
        let grounder = Grounder::new(10.0004, Vec::new(), 0.0);
        let items = vec![json!({"start": 1.23456, "end": 10.0004})];
        let grounded = grounder.ground_ranges(items, "start", "end");
        assert_eq!(grounded.items[0]["start"], json!(1.235));
        assert_eq!(grounded.items[0]["end"], json!(10.0));
        let tight = Grounder::new(10.0006, Vec::new(), 0.0);
        let grounded = tight.ground_ranges(vec![json!({"start": 9, "end": 11})], "start", "end");
        assert_eq!(grounded.items[0]["end"], json!(10.0));
    }

    /// A small deterministic generator, so the property tests need no extra crate.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }

        fn below(&mut self, limit: u64) -> u64 {
            self.next() % limit
        }

        fn time_value(&mut self, duration: f64) -> Value {
            let seconds = (self.below(3000) as f64 / 1000.0 - 0.5) * duration * 1.6;
            match self.below(7) {
                0 => json!(seconds),
                1 => json!(seconds.round() as i64),
                2 if seconds >= 0.0 => {
                    let whole = seconds as u64;
                    json!(format!("{:02}:{:02}", whole / 60, whole % 60))
                }
                3 if seconds >= 0.0 => json!(format!("{seconds:.2}s")),
                4 => json!("garbage"),
                5 => json!(format!("0:{}", self.below(90))),
                _ => json!(seconds),
            }
        }
    }

    fn random_items(random: &mut Lcg, duration: f64, count: usize) -> Vec<Value> {
        (0..count)
            .map(|index| {
                let mut object = Map::new();
                object.insert("title".into(), json!(format!("t{index}")));
                match random.below(4) {
                    0 => {
                        object.insert("timestamp".into(), random.time_value(duration));
                    }
                    1 => {
                        object.insert("start".into(), random.time_value(duration));
                    }
                    _ => {
                        object.insert("start".into(), random.time_value(duration));
                        object.insert("end".into(), random.time_value(duration));
                    }
                }
                Value::Object(object)
            })
            .collect()
    }

    fn random_grounder(random: &mut Lcg) -> Grounder {
        let duration = 0.5 + random.below(600_000) as f64 / 1000.0;
        let cuts = (0..random.below(30))
            .map(|_| random.below(1_200_000) as f64 / 1000.0 - 100.0)
            .collect();
        Grounder::new(duration, cuts, random.below(3000) as f64 / 1000.0)
    }

    #[test]
    fn ground_ranges_output_is_always_inside_the_video_and_sorted() {
        let mut random = Lcg(7);
        for _ in 0..300 {
            let grounder = random_grounder(&mut random);
            let count = random.below(25) as usize;
            let items = random_items(&mut random, grounder.duration(), count);
            let grounded = grounder.ground_ranges(items, "start", "end");
            assert_eq!(
                grounded.items.len()
                    + grounded
                        .warnings
                        .iter()
                        .filter(|w| w.starts_with("dropped"))
                        .count(),
                count
            );
            let mut previous = 0.0;
            for item in &grounded.items {
                let start = item["start"].as_f64().unwrap();
                let end = item["end"].as_f64().unwrap();
                assert!(
                    0.0 <= start && start <= end && end <= grounder.duration(),
                    "{item}"
                );
                assert!(start >= previous, "not sorted");
                assert!(close(start, round_ms(start)) && close(end, round_ms(end)));
                previous = start;
            }
        }
    }

    #[test]
    fn ground_chapters_snaps_and_makes_chapters_contiguous() {
        let items = vec![
            json!({"title": "Setup", "timestamp": "00:12"}),
            json!({"title": "Intro", "timestamp": "00:02"}),
            json!({"title": "Middle", "start": "0:30.6", "end": "0:44"}),
            json!({"title": "Finale", "start": "0:50"}),
        ];
        let grounded = grounder().ground_chapters(items);
        let expected = vec![
            json!({"start": 0.0, "end": 12.4, "title": "Intro", "snapped": false}),
            json!({"start": 12.4, "end": 30.0, "title": "Setup", "snapped": true}),
            json!({"start": 30.0, "end": 50.0, "title": "Middle", "snapped": true}),
            json!({"start": 50.0, "end": 61.2, "title": "Finale", "snapped": false}),
        ];
        assert_eq!(grounded.items, expected);
        assert_eq!(
            grounded.warnings,
            ["moved chapter 2 (\"Intro\") from 2 s to the start of the video"]
        );
    }

    #[test]
    fn ground_chapters_drops_duplicates_late_and_short_chapters() {
        let items = vec![
            json!({"title": "A", "start": 0}),
            json!({"title": "B", "start": "00:30"}),
            json!({"title": "B again", "start": "00:30.4"}),
            json!({"title": "Blip", "start": "00:44.8"}),
            json!({"title": "C", "start": "00:45.5"}),
            json!({"title": "Tail", "start": "01:00.9"}),
            json!({"title": "Late", "start": "02:00"}),
            json!({"title": "Broken", "start": "1:75"}),
        ];
        let grounder = Grounder::new(61.2, vec![5.0, 12.4, 30.0, 44.8, 60.5], 0.5);
        let grounded = grounder.ground_chapters(items);
        let titles: Vec<&str> = grounded
            .items
            .iter()
            .map(|item| item["title"].as_str().unwrap())
            .collect();
        assert_eq!(titles, ["A", "B", "C"]);
        assert_eq!(grounded.items[1]["start"], json!(30.0));
        assert_eq!(grounded.items[1]["end"], json!(45.5));
        assert_eq!(grounded.items[2]["end"], json!(61.2));
        let warnings = grounded.warnings.join("\n");
        for expected in [
            "dropped chapter 7 (\"Late\") at \"02:00\": after the end of the video (61.2 s)",
            "dropped chapter 8 (\"Broken\"): cannot read the time \"1:75\"",
            "dropped chapter 3 (\"B again\"): it starts at the same time as chapter 2 (\"B\") (30 s)",
            "merged chapter 6 (\"Tail\") at 60.5 s (0.7 s long) into chapter 5 (\"C\")",
            "merged chapter 4 (\"Blip\") at 44.8 s (0.7 s long) into chapter 2 (\"B\")",
        ] {
            assert!(warnings.contains(expected), "missing {expected:?} in\n{warnings}");
        }
    }

    #[test]
    fn ground_chapters_merges_a_short_first_chapter_into_the_next() {
        let grounder = Grounder::new(20.0, vec![0.6], 0.2);
        let items = vec![
            json!({"title": "Cold open", "start": 0}),
            json!({"title": "Main", "start": 0.6}),
        ];
        let grounded = grounder.ground_chapters(items);
        assert_eq!(
            grounded.items,
            vec![json!({"start": 0.0, "end": 20.0, "title": "Main", "snapped": false})]
        );
        assert!(grounded.warnings[0].contains("which now starts at 0"));
    }

    #[test]
    fn ground_chapters_handles_empty_and_tiny_videos() {
        assert_eq!(grounder().ground_chapters(Vec::new()), Grounded::default());
        let empty_video = Grounder::new(0.0, Vec::new(), 1.0);
        let grounded = empty_video.ground_chapters(vec![json!({"title": "A", "start": 0})]);
        assert!(grounded.items.is_empty());
        assert_eq!(grounded.warnings.len(), 1);
        let tiny = Grounder::new(0.4, Vec::new(), 1.0);
        let grounded = tiny.ground_chapters(vec![
            json!({"title": "A", "start": 0}),
            json!({"title": "B", "start": 0.2}),
        ]);
        assert_eq!(
            grounded.items,
            vec![json!({"start": 0.0, "end": 0.4, "title": "B", "snapped": false})]
        );
    }

    #[test]
    fn ground_chapters_output_always_tiles_the_video() {
        let mut random = Lcg(42);
        for _ in 0..300 {
            let grounder = random_grounder(&mut random);
            let count = random.below(25) as usize;
            let items = random_items(&mut random, grounder.duration(), count);
            let grounded = grounder.ground_chapters(items);
            let Some(first) = grounded.items.first() else {
                continue;
            };
            assert_eq!(first["start"], json!(0.0));
            let last = grounded.items.last().unwrap();
            let last_end = last["end"].as_f64().unwrap();
            assert!(last_end <= grounder.duration() && grounder.duration() - last_end < 0.001);
            for pair in grounded.items.windows(2) {
                assert_eq!(pair[0]["end"], pair[1]["start"], "not contiguous");
            }
            for item in &grounded.items {
                let start = item["start"].as_f64().unwrap();
                let end = item["end"].as_f64().unwrap();
                assert!(
                    0.0 <= start && start < end && end <= grounder.duration(),
                    "{item}"
                );
                if grounded.items.len() > 1 {
                    assert!(end - start >= MIN_CHAPTER_SECONDS - 0.001, "{item}");
                }
                let snapped = item["snapped"].as_bool().unwrap();
                if snapped {
                    assert!(grounder
                        .boundaries()
                        .iter()
                        .any(|cut| close(round_ms(*cut), start)));
                }
            }
        }
    }
}
