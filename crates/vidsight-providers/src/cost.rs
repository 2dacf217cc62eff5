//! Prices: a table from the configuration (prices move; none is compiled in), and the cost
//! of a run's usage in US dollars.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use vidsight_domain::ai::TokenUsage;

/// The price of one model, US dollars per million tokens.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Prompt tokens of every modality without a price of its own.
    pub input: f64,
    /// Answer and thinking tokens.
    pub output: f64,
    /// Video prompt tokens, when priced differently.
    #[serde(default)]
    pub video_input: Option<f64>,
    /// Audio prompt tokens, when priced differently.
    #[serde(default)]
    pub audio_input: Option<f64>,
}

/// Model name (or a prefix ending in `*`) → price.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PriceTable(pub BTreeMap<String, Price>);

impl PriceTable {
    /// The price of `model`: an exact entry, else the longest `prefix*` entry that matches.
    pub fn price(&self, model: &str) -> Option<&Price> {
        let model = model.strip_prefix("models/").unwrap_or(model);
        self.0.get(model).or_else(|| {
            self.0
                .iter()
                .filter_map(|(name, price)| {
                    let prefix = name.strip_suffix('*')?;
                    model.starts_with(prefix).then_some((prefix.len(), price))
                })
                .max_by_key(|(length, _)| *length)
                .map(|(_, price)| price)
        })
    }

    /// What the usage costs, in dollars; `None` when the model has no price.
    pub fn cost(&self, model: &str, usage: &TokenUsage) -> Option<f64> {
        let price = self.price(model)?;
        let mut priced_prompt = 0u64;
        let mut dollars = 0.0;
        for (modality, tokens) in &usage.by_modality {
            let rate = match modality.as_str() {
                "VIDEO" => price.video_input,
                "AUDIO" => price.audio_input,
                _ => None,
            };
            if let Some(rate) = rate {
                dollars += *tokens as f64 * rate / 1e6;
                priced_prompt += tokens;
            }
        }
        dollars += usage.prompt.saturating_sub(priced_prompt) as f64 * price.input / 1e6;
        dollars += (usage.candidates + usage.thoughts) as f64 * price.output / 1e6;
        Some((dollars * 1e6).round() / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_follow_the_table_by_modality() {
        let mut table = PriceTable::default();
        table.0.insert(
            "gemini-3.5-flash*".into(),
            Price {
                input: 1.5,
                output: 9.0,
                video_input: Some(1.0),
                audio_input: None,
            },
        );
        table.0.insert(
            "gemini-3.5-flash-lite".into(),
            Price {
                input: 0.3,
                output: 2.5,
                ..Default::default()
            },
        );
        let usage = TokenUsage {
            prompt: 1_000_000,
            candidates: 100_000,
            thoughts: 100_000,
            total: 1_200_000,
            by_modality: [("VIDEO".to_owned(), 800_000), ("TEXT".to_owned(), 200_000)]
                .into_iter()
                .collect(),
        };
        // 0.8 M video at $1 + 0.2 M other at $1.5 + 0.2 M out at $9
        assert_eq!(table.cost("gemini-3.5-flash-001", &usage), Some(2.9));
        // the exact entry wins over the longer-named prefix
        assert_eq!(
            table.cost("models/gemini-3.5-flash-lite", &usage),
            Some(0.8)
        );
        assert_eq!(table.cost("llava:13b", &usage), None);
    }
}
