//! On-screen text: Tesseract reads each shot's keyframe (two at a time: one per core), and
//! the same text over consecutive shots becomes one time range.
use futures::StreamExt;
use vidsight_domain::insights::{OnScreenText, Shot};
use vidsight_media::MediaTools;

/// At most this many keyframes are read.
pub const MAX_SHOTS: usize = 2000;
/// Lines Tesseract is less sure of than this (mean word confidence, 0–100) are dropped.
const MIN_CONFIDENCE: f64 = 60.0;

/// Reads the keyframes (`jpeg_of(shot)` gives a shot's image) and merges the text found into
/// ranges. OCR failing (Tesseract missing, a language not installed) is logged once and
/// yields nothing: text is a bonus, never a reason to fail an analysis.
pub async fn read_text(
    tools: &MediaTools,
    languages: &str,
    shots: &[Shot],
    jpeg_of: impl Fn(usize) -> Option<Vec<u8>>,
) -> Vec<OnScreenText> {
    if languages.is_empty() {
        return Vec::new();
    }
    let jobs: Vec<(usize, Vec<u8>)> = (0..shots.len().min(MAX_SHOTS))
        .filter_map(|position| jpeg_of(position).map(|jpeg| (position, jpeg)))
        .collect();
    let mut results: Vec<(usize, Vec<(String, f64)>)> = futures::stream::iter(jobs)
        .map(|(position, jpeg)| async move { (position, tools.ocr(&jpeg, languages).await) })
        .buffer_unordered(2)
        .filter_map(|(position, result)| async move {
            match result {
                Ok(lines) => Some((position, lines)),
                Err(error) => {
                    tracing::warn!(%error, "on-screen text not read");
                    None
                }
            }
        })
        .collect()
        .await;
    results.sort_by_key(|(position, _)| *position);
    merge(shots, &results)
}

/// Text lines per shot position → ranges: a line seen in consecutive shots is one entry.
pub fn merge(shots: &[Shot], found: &[(usize, Vec<(String, f64)>)]) -> Vec<OnScreenText> {
    // (normalised text) → (index in out, last shot position)
    let mut open: std::collections::HashMap<String, (usize, usize, f64, u32)> =
        std::collections::HashMap::new();
    let mut out: Vec<OnScreenText> = Vec::new();
    for (position, lines) in found {
        let shot = &shots[*position];
        for (text, confidence) in lines {
            let clean = text.trim();
            if *confidence < MIN_CONFIDENCE
                || clean.chars().filter(|c| c.is_alphanumeric()).count() < 2
            {
                continue;
            }
            let key: String = clean
                .chars()
                .filter(|c| c.is_alphanumeric())
                .flat_map(char::to_lowercase)
                .collect();
            match open.get_mut(&key) {
                Some((at, last, sum, count)) if *last + 1 == *position || *last == *position => {
                    out[*at].end = shot.end;
                    *last = *position;
                    *sum += confidence;
                    *count += 1;
                    out[*at].confidence = (*sum / *count as f64 / 100.0 * 100.0).round() / 100.0;
                }
                _ => {
                    open.insert(key, (out.len(), *position, *confidence, 1));
                    out.push(OnScreenText {
                        text: clean.to_owned(),
                        start: shot.start,
                        end: shot.end,
                        confidence: (confidence / 100.0 * 100.0).round() / 100.0,
                    });
                }
            }
        }
    }
    out.sort_by(|a, b| a.start.total_cmp(&b.start));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shot(index: u32, start: f64, end: f64) -> Shot {
        Shot {
            index,
            start,
            end,
            keyframe: None,
            thumbnail: None,
            brightness: None,
            motion: None,
            colors: Vec::new(),
        }
    }

    #[test]
    fn text_over_consecutive_shots_is_one_range() {
        let shots = vec![
            shot(0, 0.0, 2.0),
            shot(1, 2.0, 4.0),
            shot(2, 4.0, 6.0),
            shot(3, 6.0, 8.0),
        ];
        let found = vec![
            (
                0,
                vec![("BREAKING NEWS".to_owned(), 95.0), ("~".to_owned(), 90.0)],
            ),
            (
                1,
                vec![
                    ("Breaking news".to_owned(), 85.0),
                    ("blurry".to_owned(), 40.0),
                ],
            ),
            (3, vec![("BREAKING NEWS".to_owned(), 90.0)]),
        ];
        let merged = merge(&shots, &found);
        assert_eq!(merged.len(), 2, "{merged:?}");
        assert_eq!((merged[0].start, merged[0].end), (0.0, 4.0));
        assert_eq!(merged[0].text, "BREAKING NEWS");
        assert!((merged[0].confidence - 0.9).abs() < 1e-9, "{merged:?}");
        assert_eq!((merged[1].start, merged[1].end), (6.0, 8.0));
    }
}
