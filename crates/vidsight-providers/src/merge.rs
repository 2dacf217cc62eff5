//! A provider's answer, grounded on the local analysis and merged into the insights
//! document, every item marked with its source and model.

use crate::grounding::Grounder;
use serde_json::Value;
use vidsight_domain::ai::{
    Chapter, CustomAnswer, Feature, GeneratedText, Label, ModerationFlag, Summary, Topics,
    TranscriptSegment,
};
use vidsight_domain::{AnalysisOptions, Error, ErrorCode, Insights, Result, Source};

/// The grounder of a video: its duration and the starts of its shots (but the first).
pub fn grounder(insights: &Insights, snap_tolerance: f64) -> Grounder {
    let boundaries = insights
        .shots
        .iter()
        .skip(1)
        .map(|shot| shot.start)
        .collect();
    Grounder::new(insights.media.duration, boundaries, snap_tolerance)
}

fn text(value: &Value, key: &str) -> Option<String> {
    value[key]
        .as_str()
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .map(str::to_owned)
}

fn number(value: &Value, key: &str) -> f64 {
    value[key].as_f64().unwrap_or(0.0)
}

fn items(answer: &Value, feature: Feature) -> Vec<Value> {
    answer[feature.as_str()]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Grounds `answer` (one property per feature) and writes it into `insights`. Returns what
/// grounding changed or dropped. Fails with `provider_bad_output` when a custom answer does
/// not follow the user's schema.
pub fn merge(
    insights: &mut Insights,
    answer: &Value,
    features: &[Feature],
    source: Source,
    model: &str,
    options: &AnalysisOptions,
    grounder: &Grounder,
) -> Result<Vec<String>> {
    if !answer.is_object() {
        return Err(Error::new(
            ErrorCode::ProviderBadOutput,
            "the answer is not a JSON object",
        ));
    }
    let model = Some(model.to_owned());
    let mut warnings = Vec::new();
    for &feature in features {
        match feature {
            Feature::Summary => {
                insights.summary = text(answer, "summary").map(|text| Summary {
                    text,
                    source,
                    model: model.clone(),
                });
            }
            Feature::Chapters => {
                let grounded = grounder.ground_chapters(items(answer, feature));
                warnings.extend(grounded.warnings);
                insights.chapters = grounded
                    .items
                    .iter()
                    .map(|item| Chapter {
                        title: text(item, "title").unwrap_or_else(|| "Untitled".into()),
                        start: number(item, "start"),
                        end: number(item, "end"),
                        summary: text(item, "summary"),
                        snapped: item["snapped"].as_bool().unwrap_or(false),
                        source,
                        model: model.clone(),
                    })
                    .collect();
            }
            Feature::Transcript => {
                let grounded = grounder.ground_ranges(items(answer, feature), "start", "end");
                warnings.extend(grounded.warnings);
                insights.transcript = grounded
                    .items
                    .iter()
                    .filter_map(|item| {
                        Some(TranscriptSegment {
                            start: number(item, "start"),
                            end: number(item, "end"),
                            speaker: text(item, "speaker"),
                            text: text(item, "text")?,
                            source,
                            model: model.clone(),
                        })
                    })
                    .collect();
            }
            Feature::Labels => {
                let grounded = grounder.ground_ranges(items(answer, feature), "start", "end");
                warnings.extend(grounded.warnings);
                insights.labels = grounded
                    .items
                    .iter()
                    .filter_map(|item| {
                        Some(Label {
                            name: text(item, "name")?,
                            category: text(item, "category"),
                            start: number(item, "start"),
                            end: number(item, "end"),
                            confidence: item["confidence"].as_f64().map(|c| c.clamp(0.0, 1.0)),
                            source,
                            model: model.clone(),
                        })
                    })
                    .collect();
            }
            Feature::Text => {
                let grounded = grounder.ground_ranges(items(answer, feature), "start", "end");
                warnings.extend(grounded.warnings);
                insights.text = grounded
                    .items
                    .iter()
                    .filter_map(|item| {
                        Some(GeneratedText {
                            text: text(item, "text")?,
                            start: number(item, "start"),
                            end: number(item, "end"),
                            source,
                            model: model.clone(),
                        })
                    })
                    .collect();
            }
            Feature::Topics => {
                let strings = |key: &str| -> Vec<String> {
                    answer["topics"][key]
                        .as_array()
                        .map(|list| {
                            list.iter()
                                .filter_map(|item| item.as_str())
                                .map(|item| item.trim().to_owned())
                                .filter(|item| !item.is_empty())
                                .collect()
                        })
                        .unwrap_or_default()
                };
                insights.topics = Some(Topics {
                    topics: strings("topics"),
                    keywords: strings("keywords"),
                    source,
                    model: model.clone(),
                });
            }
            Feature::Moderation => {
                let grounded = grounder.ground_ranges(items(answer, feature), "start", "end");
                warnings.extend(grounded.warnings);
                insights.moderation = grounded
                    .items
                    .iter()
                    .filter_map(|item| {
                        Some(ModerationFlag {
                            category: text(item, "category")?,
                            severity: text(item, "severity").unwrap_or_else(|| "low".into()),
                            start: number(item, "start"),
                            end: number(item, "end"),
                            reason: text(item, "reason"),
                            source,
                            model: model.clone(),
                        })
                    })
                    .collect();
            }
            Feature::Custom => {
                let value = answer.get("custom").cloned().unwrap_or(Value::Null);
                if let Some(schema) = &options.schema {
                    crate::schema::validate(schema, &value).map_err(|errors| {
                        Error::new(
                            ErrorCode::ProviderBadOutput,
                            format!(
                                "the custom answer does not follow the schema: {}",
                                errors.join("; ")
                            ),
                        )
                    })?;
                }
                insights.custom = Some(CustomAnswer {
                    prompt: options.prompt.clone().unwrap_or_default(),
                    answer: value,
                    source,
                    model: model.clone(),
                });
            }
        }
    }
    Ok(warnings)
}

/// What the local analysis knows, as text a model can use to place times: shot starts,
/// on-screen text, captions.
pub fn context_text(insights: &Insights) -> String {
    use std::fmt::Write;
    let mut text = String::new();
    let clock = crate::openai::clock;
    let starts: Vec<String> = insights
        .shots
        .iter()
        .skip(1)
        .take(200)
        .map(|shot| clock(shot.start))
        .collect();
    if !starts.is_empty() {
        let _ = writeln!(text, "Shot changes at: {}", starts.join(", "));
    }
    for line in insights.ocr.iter().take(100) {
        let _ = writeln!(
            text,
            "On screen {}-{}: {}",
            clock(line.start),
            clock(line.end),
            line.text
        );
    }
    if let Some(track) = insights.captions.first() {
        for cue in track.cues.iter().take(300) {
            let _ = writeln!(
                text,
                "Caption {}-{}: {}",
                clock(cue.start),
                clock(cue.end),
                cue.text
            );
        }
    }
    text
}
