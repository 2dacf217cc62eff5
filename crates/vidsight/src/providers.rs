//! The analysis-provider engine from the configuration: Gemini when it has a key, an
//! OpenAI-compatible server when it has a model; the token budget from the accounts.

use anyhow::{bail, Context};
use std::sync::Arc;
use std::time::Duration;
use vidsight_config::Config;
use vidsight_domain::ai::{Feature, MediaResolution};
use vidsight_domain::{Error, ErrorCode, Result, Source, UserId};
use vidsight_providers::cost::{Price, PriceTable};
use vidsight_providers::engine::{Engine, EngineSettings};
use vidsight_providers::gemini::{Gemini, GeminiSettings};
use vidsight_providers::limiter::{Limiter, Limits};
use vidsight_providers::openai::{OpenAi, OpenAiSettings};
use vidsight_providers::retry::RetryPolicy;
use vidsight_providers::Secret;

/// A key from the configuration, or from the file it names.
fn key(inline: &str, file: &str, what: &str) -> anyhow::Result<Secret> {
    if !inline.trim().is_empty() {
        return Ok(Secret::new(inline.trim()));
    }
    if file.trim().is_empty() {
        return Ok(Secret::default());
    }
    let text = std::fs::read_to_string(file.trim())
        .with_context(|| format!("reading {what} from {file}"))?;
    Ok(Secret::new(text.trim()))
}

fn resolution(text: &str) -> anyhow::Result<Option<MediaResolution>> {
    Ok(match text.trim().to_ascii_lowercase().as_str() {
        "" => None,
        "low" => Some(MediaResolution::Low),
        "medium" => Some(MediaResolution::Medium),
        "high" => Some(MediaResolution::High),
        other => {
            bail!("providers.gemini.media_resolution `{other}`: use \"\", low, medium or high")
        }
    })
}

/// The engine the API and the worker share.
pub fn engine(
    config: &Config,
    blobs: Arc<dyn vidsight_blob::BlobStore>,
    cache: Arc<dyn vidsight_cache::Cache>,
    tools: vidsight_media::MediaTools,
) -> anyhow::Result<Arc<Engine>> {
    let providers = &config.providers;
    let default_provider = Source::parse(&providers.default).with_context(|| {
        format!(
            "providers.default `{}`: use local, gemini or openai",
            providers.default
        )
    })?;
    let mut features = Vec::new();
    for name in &providers.features {
        features.push(Feature::parse(name).with_context(|| {
            format!("providers.features: unknown feature `{name}` (summary, chapters, transcript, labels, text, topics, moderation)")
        })?);
    }
    let prices = PriceTable(
        providers
            .prices
            .iter()
            .map(|(model, price)| {
                (
                    model.clone(),
                    Price {
                        input: price.input,
                        output: price.output,
                        video_input: price.video_input,
                        audio_input: price.audio_input,
                    },
                )
            })
            .collect(),
    );
    let settings = EngineSettings {
        default_provider,
        default_features: features,
        snap_tolerance: providers.snap_tolerance_seconds.max(0.0),
        proxy: providers.proxy,
        proxy_max_height: providers.proxy_max_height.max(144),
        prices,
    };
    let mut engine = Engine::new(blobs, tools, settings);

    let gemini = &providers.gemini;
    let gemini_key = key(&gemini.api_key, &gemini.api_key_file, "the Gemini key")?;
    if !gemini_key.is_empty() {
        let limiter = Limiter::new(
            cache.clone(),
            "gemini",
            Limits {
                requests_per_minute: (gemini.requests_per_minute > 0)
                    .then_some(gemini.requests_per_minute),
                tokens_per_minute: (gemini.tokens_per_minute > 0)
                    .then_some(gemini.tokens_per_minute),
            },
        );
        let _ = resolution(&gemini.media_resolution)?;
        let client = Gemini::new(
            GeminiSettings {
                base_url: gemini.base_url.clone(),
                api_key: gemini_key,
                model: gemini.model.clone(),
                request_timeout: Duration::from_secs(gemini.request_timeout_seconds.max(1)),
                inline_max_bytes: gemini.inline_max_bytes,
                active_deadline: Duration::from_secs(gemini.active_deadline_seconds.max(1)),
                keep_files: gemini.keep_files,
                retry: RetryPolicy {
                    attempts: gemini.max_attempts.max(1),
                    ..Default::default()
                },
                max_output_tokens: (gemini.max_output_tokens > 0)
                    .then_some(gemini.max_output_tokens),
                ..Default::default()
            },
            limiter,
            cache.clone(),
        )
        .map_err(|error| anyhow::anyhow!("{}", error.message))?;
        tracing::info!(model = %gemini.model, endpoint = %vidsight_config::redact_url(&gemini.base_url), "provider gemini: on");
        engine = engine.with_provider(Arc::new(client));
    } else if default_provider == Source::Gemini {
        bail!("providers.default is gemini but no key is set: set GEMINI_API_KEY or providers.gemini.api_key");
    }

    let openai = &providers.openai;
    if !openai.model.trim().is_empty() {
        let limiter = Limiter::new(
            cache,
            "openai",
            Limits {
                requests_per_minute: (openai.requests_per_minute > 0)
                    .then_some(openai.requests_per_minute),
                tokens_per_minute: (openai.tokens_per_minute > 0)
                    .then_some(openai.tokens_per_minute),
            },
        );
        let client = OpenAi::new(
            OpenAiSettings {
                base_url: openai.base_url.clone(),
                api_key: key(
                    &openai.api_key,
                    &openai.api_key_file,
                    "the OpenAI-compatible key",
                )?,
                model: openai.model.clone(),
                request_timeout: Duration::from_secs(openai.request_timeout_seconds.max(1)),
                max_images: openai.max_images.max(1),
                one_image_per_message: openai.one_image_per_message,
                retry: RetryPolicy {
                    attempts: openai.max_attempts.max(1),
                    ..Default::default()
                },
                max_tokens: (openai.max_tokens > 0).then_some(openai.max_tokens),
                ..Default::default()
            },
            limiter,
        )
        .map_err(|error| anyhow::anyhow!("{}", error.message))?;
        tracing::info!(model = %openai.model, endpoint = %vidsight_config::redact_url(&openai.base_url), "provider openai: on");
        engine = engine.with_provider(Arc::new(client));
    } else if default_provider == Source::Openai {
        bail!("providers.default is openai but no model is set (providers.openai.model)");
    }
    Ok(Arc::new(engine))
}

/// The monthly provider-token budget, read from the accounts' usage.
pub struct AccountsBudget {
    pub accounts: Arc<dyn vidsight_store::Accounts>,
    pub tokens_per_month: u64,
}

#[vidsight_providers::async_trait]
impl vidsight_providers::engine::TokenBudget for AccountsBudget {
    async fn check(&self, user: UserId, tokens: u64) -> Result<()> {
        if self.tokens_per_month == 0 {
            return Ok(());
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_millis() as i64)
            .unwrap_or(0);
        let period = vidsight_store::accounts::period_of(now);
        let usage = self.accounts.usage(user, &period).await?;
        if usage.provider_tokens as u64 + tokens > self.tokens_per_month {
            return Err(Error::new(
                ErrorCode::QuotaExceeded,
                format!(
                    "token budget exceeded: the limit is {} provider tokens per month ({period}), {} are used and this analysis is estimated at {tokens}",
                    self.tokens_per_month, usage.provider_tokens
                ),
            ));
        }
        Ok(())
    }
}
