//! HTTP `Range: bytes=…` parsing for one range (RFC 9110 §14). Several ranges are answered
//! with the whole object, which the RFC allows.
use std::ops::Range;

/// What the Range header asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable Range header: send everything.
    Whole,
    /// These bytes (end exclusive), already clipped to the object.
    Part(Range<u64>),
    /// Asked for bytes the object does not have.
    Unsatisfiable,
}

pub fn parse(header: Option<&str>, size: u64) -> RangeRequest {
    let Some(header) = header else {
        return RangeRequest::Whole;
    };
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeRequest::Whole;
    };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((start, end)) = spec.trim().split_once('-') else {
        return RangeRequest::Whole;
    };
    let (start, end) = (start.trim(), end.trim());
    if start.is_empty() {
        // suffix: the last N bytes
        let Ok(length) = end.parse::<u64>() else {
            return RangeRequest::Whole;
        };
        if length == 0 || size == 0 {
            return RangeRequest::Unsatisfiable;
        }
        return RangeRequest::Part(size.saturating_sub(length)..size);
    }
    let Ok(first) = start.parse::<u64>() else {
        return RangeRequest::Whole;
    };
    let last = if end.is_empty() {
        size.saturating_sub(1)
    } else {
        match end.parse::<u64>() {
            Ok(last) if last >= first => last.min(size.saturating_sub(1)),
            _ => return RangeRequest::Whole,
        }
    };
    if first >= size {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Part(first..last + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_players_send() {
        assert_eq!(parse(None, 100), RangeRequest::Whole);
        assert_eq!(parse(Some("bytes=0-"), 100), RangeRequest::Part(0..100));
        assert_eq!(parse(Some("bytes=10-19"), 100), RangeRequest::Part(10..20));
        assert_eq!(
            parse(Some("bytes=90-500"), 100),
            RangeRequest::Part(90..100)
        );
        assert_eq!(parse(Some("bytes=-10"), 100), RangeRequest::Part(90..100));
        assert_eq!(parse(Some("bytes=-500"), 100), RangeRequest::Part(0..100));
        assert_eq!(parse(Some("bytes=100-"), 100), RangeRequest::Unsatisfiable);
        assert_eq!(parse(Some("bytes=0-1,5-6"), 100), RangeRequest::Whole);
        assert_eq!(parse(Some("items=0-1"), 100), RangeRequest::Whole);
        assert_eq!(parse(Some("bytes=5-1"), 100), RangeRequest::Whole);
        assert_eq!(parse(Some("bytes=abc"), 100), RangeRequest::Whole);
    }
}
