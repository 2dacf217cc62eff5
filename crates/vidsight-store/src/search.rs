//! Full-text search: what is indexed (titles, and text found in insights documents with
//! its time range) and the two query dialects (SQLite FTS5 `MATCH`, PostgreSQL
//! `tsvector @@ tsquery`). Entries are written by the shared SQL in `sql.rs`; only the query
//! differs per backend.
use crate::rows::*;
use crate::traits::SearchHit;
use crate::{PostgresStore, SqliteStore};
use serde_json::Value;
use vidsight_domain::{Result, UserId};

/// One piece of searchable text.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchEntry {
    /// `title`, or the insights array it came from (`transcript`, `ocr`, `labels`, …).
    pub kind: String,
    pub start: Option<f64>,
    pub end: Option<f64>,
    pub text: String,
}

const TEXT_FIELDS: [&str; 5] = ["text", "label", "title", "name", "summary"];

/// Every piece of text in an insights document: objects with a text-like field (and their
/// `start`/`end` when they have them), and top-level strings such as a summary. The shots,
/// media facts and numbers are not text and are skipped.
pub fn entries_from_insights(insights: &Value) -> Vec<SearchEntry> {
    let mut entries = Vec::new();
    let Some(top) = insights.as_object() else {
        return entries;
    };
    for (key, value) in top {
        // bookkeeping, not content: provider runs (models, warnings), hashes, image names
        if matches!(
            key.as_str(),
            "schema"
                | "media"
                | "loudness"
                | "analyzer"
                | "providers"
                | "fingerprint"
                | "storyboard"
        ) {
            continue;
        }
        collect(key, value, &mut entries, 0);
    }
    entries
}

fn collect(kind: &str, value: &Value, entries: &mut Vec<SearchEntry>, depth: u32) {
    if depth > 6 {
        return;
    }
    match value {
        Value::String(text) if !text.trim().is_empty() && text.len() < 20_000 => {
            entries.push(SearchEntry {
                kind: kind.to_owned(),
                start: None,
                end: None,
                text: text.clone(),
            })
        }
        Value::Array(items) => {
            for item in items {
                collect(kind, item, entries, depth + 1);
            }
        }
        Value::Object(object) => {
            let text = TEXT_FIELDS
                .iter()
                .filter_map(|field| object.get(*field).and_then(Value::as_str))
                .find(|text| !text.trim().is_empty());
            if let Some(text) = text {
                entries.push(SearchEntry {
                    kind: kind.to_owned(),
                    start: object.get("start").and_then(Value::as_f64),
                    end: object.get("end").and_then(Value::as_f64),
                    text: text.to_owned(),
                });
            }
            for (key, inner) in object {
                if matches!(inner, Value::Array(_) | Value::Object(_)) {
                    collect(key, inner, entries, depth + 1);
                }
            }
        }
        _ => {}
    }
}

/// Lower case without accents (`Pastéis` → `pasteis`): how PostgreSQL's index and every
/// query see text, as SQLite's `remove_diacritics` tokenizer does.
pub fn fold(text: &str) -> String {
    use unicode_normalization::char::is_combining_mark;
    use unicode_normalization::UnicodeNormalization;
    text.nfd()
        .filter(|character| !is_combining_mark(*character))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The folded text PostgreSQL indexes: [`fold`], with punctuation as spaces, so that
/// `Lisbon.mp4` is the words `lisbon` and `mp4` as SQLite's tokenizer sees it.
pub fn fold_for_index(text: &str) -> String {
    fold(text)
        .chars()
        .map(|character| {
            if character.is_alphanumeric() {
                character
            } else {
                ' '
            }
        })
        .collect()
}

/// SQLite keeps no folded copy (its tokenizer folds).
pub fn no_fold(_text: &str) -> String {
    String::new()
}

/// The words of a query (letters and digits), folded, at most 16.
fn words(query: &str) -> Vec<String> {
    fold(query)
        .split(|character: char| !character.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .take(16)
        .map(str::to_lowercase)
        .collect()
}

/// FTS5: every word, the last one as a prefix (typing "interv" finds "interview").
pub fn fts5_query(query: &str) -> Option<String> {
    let words = words(query);
    let last = words.len().checked_sub(1)?;
    Some(
        words
            .iter()
            .enumerate()
            .map(|(index, word)| {
                if index == last {
                    format!("\"{word}\"*")
                } else {
                    format!("\"{word}\"")
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// PostgreSQL tsquery: the same rule.
pub fn tsquery(query: &str) -> Option<String> {
    let words = words(query);
    let last = words.len().checked_sub(1)?;
    Some(
        words
            .iter()
            .enumerate()
            .map(|(index, word)| {
                if index == last {
                    format!("{word}:*")
                } else {
                    word.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(" & "),
    )
}

fn hit_from_row(row: &impl Columns) -> Result<SearchHit> {
    Ok(SearchHit {
        video_id: parse_id(&row.text("video_id")?, "video id")?,
        kind: row.text("kind")?,
        start: row.optional_float("start_s")?,
        end: row.optional_float("end_s")?,
        snippet: row.text("snippet")?,
    })
}

impl SqliteStore {
    pub(crate) async fn search_text(
        &self,
        owner: Option<UserId>,
        query: &str,
        limit: u32,
    ) -> Result<Vec<SearchHit>> {
        let Some(query) = fts5_query(query) else {
            return Ok(Vec::new());
        };
        let rows = sqlx::query(
            "SELECT video_id, kind, CAST(start_s AS REAL) AS start_s, CAST(end_s AS REAL) AS end_s, \
             snippet(search_index, 0, '[', ']', '…', 16) AS snippet FROM search_index \
             WHERE search_index MATCH ?1 AND (CAST(?2 AS TEXT) IS NULL OR owner_id = ?2) \
             ORDER BY bm25(search_index) LIMIT ?3",
        )
        .bind(query)
        .bind(owner.map(|id| id.to_string()))
        .bind(limit.clamp(1, 1000) as i64)
        .fetch_all(self.read_pool())
        .await
        .map_err(db_error)?;
        rows.iter().map(hit_from_row).collect()
    }
}

impl PostgresStore {
    pub(crate) async fn search_text(
        &self,
        owner: Option<UserId>,
        query: &str,
        limit: u32,
    ) -> Result<Vec<SearchHit>> {
        let Some(query) = tsquery(query) else {
            return Ok(Vec::new());
        };
        let rows = sqlx::query(
            "SELECT video_id, kind, start_s, end_s, \
             ts_headline('simple', text, q, 'StartSel=[, StopSel=], MaxWords=24, MinWords=8') AS snippet \
             FROM search_index, to_tsquery('simple', $1) AS q \
             WHERE document @@ q AND ($2::text IS NULL OR owner_id = $2) \
             ORDER BY ts_rank(document, q) DESC, id LIMIT $3",
        )
        .bind(query)
        .bind(owner.map(|id| id.to_string()))
        .bind(limit.clamp(1, 1000) as i64)
        .fetch_all(self.read_pool())
        .await
        .map_err(db_error)?;
        rows.iter().map(hit_from_row).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn queries_are_words_with_a_prefix_last() {
        assert_eq!(
            fts5_query("Hello, wor").as_deref(),
            Some("\"hello\" \"wor\"*")
        );
        assert_eq!(tsquery("Hello, wor").as_deref(), Some("hello & wor:*"));
        assert_eq!(
            fts5_query("\" OR * NEAR("),
            Some("\"or\" \"near\"*".to_owned())
        );
        assert_eq!(fts5_query("  ,, "), None);
        assert_eq!(
            tsquery("'; DROP TABLE x; --").as_deref(),
            Some("drop & table & x:*")
        );
        assert_eq!(tsquery("Pastéis CAFÉ").as_deref(), Some("pasteis & cafe:*"));
        assert_eq!(fold("Ærøskøbing Ünïcödé"), "ærøskøbing unicode");
    }

    #[test]
    fn text_comes_out_of_insights_with_times() {
        let insights = json!({
            "schema": "vidsight.insights/v1",
            "media": { "container": "mov" },
            "shots": [{ "index": 0, "start": 0.0, "end": 2.0, "keyframe": "shot-0001.jpg" }],
            "summary": "A cooking show about bread.",
            "transcript": [{ "start": 1.5, "end": 3.0, "text": "knead the dough" }],
            "labels": [{ "label": "kitchen", "start": 0.0, "end": 9.0, "confidence": 0.9 }],
        });
        let entries = entries_from_insights(&insights);
        assert_eq!(entries.len(), 3, "{entries:?}");
        assert!(entries.contains(&SearchEntry {
            kind: "summary".into(),
            start: None,
            end: None,
            text: "A cooking show about bread.".into()
        }));
        assert!(entries.contains(&SearchEntry {
            kind: "transcript".into(),
            start: Some(1.5),
            end: Some(3.0),
            text: "knead the dough".into()
        }));
        assert!(entries.contains(&SearchEntry {
            kind: "labels".into(),
            start: Some(0.0),
            end: Some(9.0),
            text: "kitchen".into()
        }));
    }

    #[test]
    fn what_providers_add_is_found_and_their_bookkeeping_is_not() {
        let insights = json!({
            "summary": {"text": "Bread from scratch.", "source": "gemini", "model": "m"},
            "chapters": [{"title": "Kneading", "start": 10.0, "end": 20.0, "summary": "hands",
                          "snapped": true, "source": "gemini", "model": "m"}],
            "topics": {"topics": ["baking"], "keywords": ["sourdough"], "source": "gemini", "model": "m"},
            "providers": [{"source": "gemini", "model": "m", "features": ["summary"],
                           "warnings": ["dropped a chapter"], "usage": {"total": 5}}],
            "fingerprint": ["00ff00ff00ff00ff"],
        });
        let texts: Vec<(String, String)> = entries_from_insights(&insights)
            .into_iter()
            .map(|entry| (entry.kind, entry.text))
            .collect();
        assert_eq!(
            texts,
            vec![
                ("summary".into(), "Bread from scratch.".into()),
                ("chapters".into(), "Kneading".into()),
                ("topics".into(), "baking".into()),
                ("keywords".into(), "sourdough".into()),
            ]
        );
    }
}
