//! One analysis through a provider, after the local analyzer:
//!
//! 1. resolve the options against the configured defaults (provider, model, features) and
//!    check them (a custom schema before anything is sent);
//! 2. the result cache: the same content, provider, model, prompt, schema and options
//!    already answered → reuse it, 0 tokens;
//! 3. a compressed proxy (≤ 480p, a few frames a second, the audio kept) when it is smaller
//!    than the original — the model samples 1 frame a second at reduced resolution anyway;
//! 4. the provider call; the raw answer is kept for audit;
//! 5. grounding and merging into the insights; tokens and cost recorded in a
//!    [`ProviderRun`].

use crate::cost::PriceTable;
use crate::{AskRequest, Provider, ProviderRequest, Still};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use vidsight_blob::BlobStore;
use vidsight_domain::ai::{Feature, ProviderRun, TokenUsage};
use vidsight_domain::{
    AnalysisId, AnalysisOptions, Error, ErrorCode, Insights, Result, Source, Video,
};
use vidsight_media::MediaTools;

/// Engine settings (the `[providers]` configuration section).
#[derive(Clone, Debug)]
pub struct EngineSettings {
    /// The provider of analyses whose options name none.
    pub default_provider: Source,
    /// The features asked for when the options name none.
    pub default_features: Vec<Feature>,
    /// How far (s) a chapter start may move to meet a shot boundary.
    pub snap_tolerance: f64,
    /// Send a compressed proxy when smaller than the original.
    pub proxy: bool,
    pub proxy_max_height: u32,
    pub prices: PriceTable,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            default_provider: Source::Local,
            default_features: vec![Feature::Summary, Feature::Chapters],
            snap_tolerance: 2.0,
            proxy: true,
            proxy_max_height: 480,
            prices: PriceTable::default(),
        }
    }
}

/// The options, resolved.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub source: Source,
    pub model: String,
    pub features: Vec<Feature>,
    pub options: AnalysisOptions,
}

/// What the cache keeps of an answer.
#[derive(Serialize, Deserialize)]
struct CachedAnswer {
    answer: serde_json::Value,
    usage: TokenUsage,
    warnings: Vec<String>,
    raw: Option<String>,
}

pub struct Engine {
    providers: HashMap<Source, Arc<dyn Provider>>,
    blobs: Arc<dyn BlobStore>,
    tools: MediaTools,
    settings: EngineSettings,
}

impl Engine {
    pub fn new(blobs: Arc<dyn BlobStore>, tools: MediaTools, settings: EngineSettings) -> Self {
        Self {
            providers: HashMap::new(),
            blobs,
            tools,
            settings,
        }
    }

    pub fn with_provider(mut self, provider: Arc<dyn Provider>) -> Self {
        self.providers.insert(provider.source(), provider);
        self
    }

    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    /// The providers configured, besides `local`.
    pub fn available(&self) -> Vec<Source> {
        let mut sources: Vec<Source> = self.providers.keys().copied().collect();
        sources.sort_by_key(|source| source.as_str());
        sources
    }

    pub fn provider(&self, source: Source) -> Result<&Arc<dyn Provider>> {
        self.providers.get(&source).ok_or_else(|| {
            Error::new(
                ErrorCode::InvalidInput,
                format!(
                    "the {source} provider is not configured on this server (see docs/providers.md)"
                ),
            )
        })
    }

    /// The options with the defaults filled in; `None` when only the local analyzer runs.
    /// Checks everything that can be checked before a byte is sent.
    pub fn resolve(&self, options: Option<&AnalysisOptions>) -> Result<Option<Resolved>> {
        let options = options.cloned().unwrap_or_default();
        let source = options.provider.unwrap_or(self.settings.default_provider);
        if source == Source::Local {
            return Ok(None);
        }
        let provider = self.provider(source)?;
        let model = options
            .model
            .clone()
            .filter(|model| !model.trim().is_empty())
            .unwrap_or_else(|| provider.default_model().to_owned());
        let mut features = if options.features.is_empty() {
            self.settings.default_features.clone()
        } else {
            options.features.clone()
        };
        features.sort();
        features.dedup();
        if features.contains(&Feature::Custom) || options.schema.is_some() {
            if !features.contains(&Feature::Custom) {
                return Err(Error::new(
                    ErrorCode::InvalidInput,
                    "a schema is only used by the custom feature: add \"custom\" to features",
                ));
            }
            if let Some(schema) = &options.schema {
                crate::schema::check_user_schema(schema).map_err(|message| {
                    Error::new(
                        ErrorCode::InvalidInput,
                        format!("the schema is not usable: {message}"),
                    )
                })?;
            }
        }
        if let Some(fps) = options.fps {
            if !(fps > 0.0 && fps <= 24.0) {
                return Err(Error::new(
                    ErrorCode::InvalidInput,
                    "fps must be above 0 and at most 24",
                ));
            }
        }
        if let (Some(start), Some(end)) = (options.start, options.end) {
            if !(start >= 0.0 && end > start) {
                return Err(Error::new(
                    ErrorCode::InvalidInput,
                    "the clip's end must come after its start (seconds, from 0)",
                ));
            }
        }
        // the prompt and schema are built now so a bad combination fails before any upload
        crate::prompts::build(&features, &options)?;
        Ok(Some(Resolved {
            source,
            model,
            features,
            options,
        }))
    }

    /// The request a resolved analysis sends (the video path is filled in later).
    fn request(
        &self,
        resolved: &Resolved,
        video: &Video,
        insights: Option<&Insights>,
        stills: Vec<Still>,
    ) -> Result<ProviderRequest> {
        let (answer_schema, prompt) = crate::prompts::build(&resolved.features, &resolved.options)?;
        let duration = insights
            .map_or(0.0, |insights| insights.media.duration)
            .max(video.media.duration);
        let clip = match (resolved.options.start, resolved.options.end) {
            (None, None) => None,
            (start, end) => Some((start.unwrap_or(0.0), end.unwrap_or(duration).min(duration))),
        };
        Ok(ProviderRequest {
            video: Default::default(),
            mime_type: mime_for(&video.content_type, &video.filename),
            duration,
            model: resolved.model.clone(),
            features: resolved.features.clone(),
            answer_schema,
            system: crate::prompts::SYSTEM.to_owned(),
            prompt,
            media_resolution: resolved.options.media_resolution,
            fps: resolved.options.fps,
            clip,
            stills,
            context_text: insights.map(crate::merge::context_text).unwrap_or_default(),
            display_name: video.filename.clone(),
            content_sha256: video.sha256.clone(),
        })
    }

    /// Tokens the analysis will probably cost (0 when its answer is cached).
    pub async fn estimate(
        &self,
        resolved: &Resolved,
        video: &Video,
        insights: Option<&Insights>,
    ) -> Result<u64> {
        let request = self.request(resolved, video, insights, Vec::new())?;
        if self.cached(&cache_key(&request, resolved)).await.is_some() {
            return Ok(0);
        }
        self.provider(resolved.source)?.estimate(&request).await
    }

    async fn cached(&self, key: &str) -> Option<CachedAnswer> {
        let bytes = self.blobs.get_bytes(&cache_blob(key)).await.ok()??;
        serde_json::from_slice(&bytes).ok()
    }

    /// Runs the provider and merges its grounded answer into `insights`.
    #[allow(clippy::too_many_arguments)] // each is a different thing the run needs
    pub async fn run(
        &self,
        resolved: &Resolved,
        video: &Video,
        analysis_id: AnalysisId,
        original: &Path,
        tmp_dir: &Path,
        stills: Vec<Still>,
        insights: &mut Insights,
    ) -> Result<ProviderRun> {
        let provider = self.provider(resolved.source)?;
        let mut request = self.request(resolved, video, Some(insights), stills)?;
        let key = cache_key(&request, resolved);
        let mut run = ProviderRun {
            source: resolved.source,
            model: resolved.model.clone(),
            features: resolved.features.clone(),
            usage: TokenUsage::default(),
            cost_usd: None,
            cached: false,
            bytes_uploaded: 0,
            bytes_saved: 0,
            raw: None,
            warnings: Vec::new(),
        };
        let cached = match self.cached(&key).await {
            Some(cached) => {
                tracing::info!(provider = %resolved.source, model = %resolved.model, "provider answer served from the cache: 0 tokens");
                run.cached = true;
                run.raw = cached.raw.clone();
                run.cost_usd = Some(0.0);
                cached
            }
            None => {
                // a proxy only for providers that watch the video
                let _proxy = if resolved.source == Source::Gemini && self.settings.proxy {
                    self.proxy(original, tmp_dir, &mut request, &mut run).await
                } else {
                    None
                };
                if request.video.as_os_str().is_empty() {
                    request.video = original.to_owned();
                }
                let answer = provider.analyze(&request).await?;
                run.bytes_uploaded = answer.bytes_uploaded;
                run.usage = answer.usage.clone();
                run.cost_usd = self.settings.prices.cost(&resolved.model, &answer.usage);
                let raw_key = vidsight_blob::keys::analysis_prefix(video.id, analysis_id)
                    + &format!("raw/{}.json", resolved.source);
                let raw = serde_json::to_vec_pretty(&serde_json::json!({
                    "model": resolved.model,
                    "model_version": answer.model_version,
                    "responses": answer.raw,
                }))
                .unwrap_or_default();
                match self.blobs.put_bytes(&raw_key, Bytes::from(raw)).await {
                    Ok(()) => run.raw = Some(raw_key.clone()),
                    Err(error) => tracing::warn!(error = %error, "could not keep the raw answer"),
                }
                let cached = CachedAnswer {
                    answer: answer.answer,
                    usage: answer.usage,
                    warnings: answer.warnings,
                    raw: run.raw.clone(),
                };
                if let Ok(bytes) = serde_json::to_vec(&cached) {
                    if let Err(error) = self.blobs.put_bytes(&cache_blob(&key), bytes.into()).await
                    {
                        tracing::warn!(error = %error, "could not cache the provider answer");
                    }
                }
                cached
            }
        };
        run.warnings.extend(cached.warnings.iter().cloned());
        let grounder = crate::merge::grounder(insights, self.settings.snap_tolerance);
        let warnings = crate::merge::merge(
            insights,
            &cached.answer,
            &resolved.features,
            resolved.source,
            &resolved.model,
            &resolved.options,
            &grounder,
        )?;
        run.warnings.extend(warnings);
        Ok(run)
    }

    /// Makes the compressed proxy; keeps it when smaller than the original.
    async fn proxy(
        &self,
        original: &Path,
        tmp_dir: &Path,
        request: &mut ProviderRequest,
        run: &mut ProviderRun,
    ) -> Option<tempfile::TempPath> {
        let original_size = tokio::fs::metadata(original).await.ok()?.len();
        let _ = tokio::fs::create_dir_all(tmp_dir).await;
        let file = tempfile::Builder::new()
            .prefix("proxy-")
            .suffix(".mp4")
            .tempfile_in(tmp_dir)
            .ok()?
            .into_temp_path();
        // what the model samples (1 fps by default) with margin
        let fps = (request.fps.unwrap_or(1.0) * 2.0).clamp(2.0, 24.0);
        if let Err(error) = self
            .tools
            .proxy(original, &file, self.settings.proxy_max_height, fps)
            .await
        {
            tracing::warn!(error = %error, "no proxy; sending the original");
            return None;
        }
        let proxy_size = tokio::fs::metadata(&file).await.ok()?.len();
        if proxy_size >= original_size {
            return None;
        }
        run.bytes_saved = original_size - proxy_size;
        request.video = file.to_path_buf();
        request.mime_type = "video/mp4".into();
        tracing::info!(original_size, proxy_size, "sending a compressed proxy");
        Some(file)
    }

    /// The provider that answers questions: the one asked for, else the default provider,
    /// else the first configured.
    pub fn ask_source(&self, source: Option<Source>) -> Result<Source> {
        let source = match source.unwrap_or(self.settings.default_provider) {
            Source::Local => *self.available().first().ok_or_else(|| {
                Error::new(ErrorCode::InvalidInput, "no provider that answers questions is configured (gemini or openai; see docs/providers.md)")
            })?,
            other => other,
        };
        self.provider(source)?;
        Ok(source)
    }

    /// A question about a video, through the provider the options name.
    #[allow(clippy::too_many_arguments)] // each is a different thing the answer needs
    pub async fn ask(
        &self,
        source: Option<Source>,
        model: Option<String>,
        video: &Video,
        original: &Path,
        insights: &Insights,
        stills: Vec<Still>,
        history: Vec<(String, String)>,
        question: String,
    ) -> Result<(
        Source,
        String,
        futures::stream::BoxStream<'static, Result<crate::AskEvent>>,
    )> {
        let source = self.ask_source(source)?;
        let provider = self.provider(source)?;
        let model = model
            .filter(|model| !model.trim().is_empty())
            .unwrap_or_else(|| provider.default_model().to_owned());
        let request = AskRequest {
            video: original.to_owned(),
            mime_type: mime_for(&video.content_type, &video.filename),
            duration: insights.media.duration.max(video.media.duration),
            model: model.clone(),
            system: crate::prompts::ASK_SYSTEM.to_owned(),
            history,
            question,
            media_resolution: None,
            stills,
            context_text: crate::merge::context_text(insights),
            display_name: video.filename.clone(),
            content_sha256: video.sha256.clone(),
        };
        let stream = provider.ask(&request).await?;
        Ok((source, model, stream))
    }
}

/// The cache key: everything that changes the answer.
fn cache_key(request: &ProviderRequest, resolved: &Resolved) -> String {
    let mut hash = Sha256::new();
    for part in [
        request.content_sha256.as_str(),
        resolved.source.as_str(),
        resolved.model.as_str(),
        request.system.as_str(),
        request.prompt.as_str(),
        &request.answer_schema.to_string(),
        &serde_json::to_string(&(
            request.media_resolution,
            request.fps,
            request.clip,
            &resolved.options.language,
        ))
        .unwrap_or_default(),
    ] {
        hash.update(part.as_bytes());
        hash.update([0u8]);
    }
    hex::encode(hash.finalize())
}

fn cache_blob(key: &str) -> String {
    format!("provider-cache/{key}.json")
}

fn mime_for(content_type: &str, filename: &str) -> String {
    if content_type.starts_with("video/") {
        return content_type.to_owned();
    }
    let extension = filename
        .rsplit('.')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    match extension.as_str() {
        "webm" => "video/webm",
        "mov" => "video/quicktime",
        "mkv" => "video/x-matroska",
        "avi" => "video/x-msvideo",
        "mpg" | "mpeg" | "ts" => "video/mpeg",
        _ => "video/mp4",
    }
    .to_owned()
}

/// An account's monthly provider-token budget (the accounts' usage in the app).
#[async_trait::async_trait]
pub trait TokenBudget: Send + Sync {
    /// `quota_exceeded` when `tokens` more would pass the account's budget.
    async fn check(&self, user: vidsight_domain::UserId, tokens: u64) -> Result<()>;
}
