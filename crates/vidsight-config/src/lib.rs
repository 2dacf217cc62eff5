//! Layered configuration: compiled-in defaults (the reference file
//! `config/vidsight.example.toml`, so defaults and documentation cannot drift) →
//! optional `vidsight.toml` → `VIDSIGHT_*` environment → command-line flags.

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The reference configuration, which is also the compiled-in default.
pub const REFERENCE_TOML: &str = include_str!("../../../config/vidsight.example.toml");

/// A role a process can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Api,
    Worker,
}

impl Role {
    pub const ALL: [Role; 2] = [Role::Api, Role::Worker];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Api => "api",
            Role::Worker => "worker",
        }
    }
}

/// The set of roles; `all` expands to every role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Roles(pub BTreeSet<Role>);

impl Roles {
    pub fn all() -> Self {
        Roles(Role::ALL.into_iter().collect())
    }

    pub fn contains(&self, role: Role) -> bool {
        self.0.contains(&role)
    }

    /// Parses `all` or a comma-separated list such as `api,worker`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut roles = BTreeSet::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.to_ascii_lowercase().as_str() {
                "all" => roles.extend(Role::ALL),
                "api" => {
                    roles.insert(Role::Api);
                }
                "worker" => {
                    roles.insert(Role::Worker);
                }
                other => {
                    return Err(format!(
                        "unknown role `{other}`: use `all` or a comma-separated list of `api` and `worker`"
                    ))
                }
            }
        }
        if roles.is_empty() {
            return Err(
                "no role given: use `all` or a comma-separated list of `api` and `worker`".into(),
            );
        }
        Ok(Roles(roles))
    }
}

impl<'de> Deserialize<'de> for Roles {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            List(Vec<String>),
        }
        let text = match Raw::deserialize(deserializer)? {
            Raw::Text(text) => text,
            Raw::List(list) => list.join(","),
        };
        Roles::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub addr: SocketAddr,
    pub roles: Roles,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub storage_url: String,
    pub queue_url: String,
    pub cache_url: String,
    pub cache_namespace: String,
    pub database: DatabaseConfig,
    pub s3: S3Config,
    pub amqp: AmqpConfig,
    pub upload: UploadConfig,
    pub worker: WorkerConfig,
    pub media: MediaConfig,
    pub analysis: AnalysisConfig,
    pub http: HttpConfig,
    pub auth: AuthConfig,
    pub quota: QuotaConfig,
    pub rate_limit: RateLimitConfig,
    pub log: LogConfig,
    pub providers: ProvidersConfig,
}

/// Analysis providers beyond the local analyzer (`[providers]`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProvidersConfig {
    /// `local`, `gemini` or `openai`: the provider of analyses whose request names none.
    pub default: String,
    /// Features asked for when a request names none.
    pub features: Vec<String>,
    pub snap_tolerance_seconds: f64,
    pub proxy: bool,
    pub proxy_max_height: u32,
    /// Provider tokens each account may spend per calendar month (0 = unlimited).
    pub tokens_per_month: u64,
    pub gemini: GeminiProviderConfig,
    pub openai: OpenAiProviderConfig,
    /// Model name (or `prefix*`) → US dollars per million tokens.
    pub prices: std::collections::BTreeMap<String, PriceConfig>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GeminiProviderConfig {
    pub base_url: String,
    pub api_key: String,
    pub api_key_file: String,
    pub model: String,
    pub media_resolution: String,
    pub requests_per_minute: u32,
    pub tokens_per_minute: u64,
    pub inline_max_bytes: u64,
    pub keep_files: bool,
    pub request_timeout_seconds: u64,
    pub active_deadline_seconds: u64,
    pub max_attempts: u32,
    pub max_output_tokens: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OpenAiProviderConfig {
    pub base_url: String,
    pub api_key: String,
    pub api_key_file: String,
    pub model: String,
    pub max_images: usize,
    pub one_image_per_message: bool,
    pub requests_per_minute: u32,
    pub tokens_per_minute: u64,
    pub request_timeout_seconds: u64,
    pub max_attempts: u32,
    pub max_tokens: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PriceConfig {
    pub input: f64,
    pub output: f64,
    #[serde(default)]
    pub video_input: Option<f64>,
    #[serde(default)]
    pub audio_input: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub web_dir: String,
    pub cors_origins: Vec<String>,
    pub tls: bool,
}

/// Who may create an account.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Registration {
    Open,
    Invite,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub registration: Registration,
    pub access_token_minutes: u64,
    pub refresh_token_days: u64,
    pub refresh_reuse_grace_seconds: u64,
    pub key_rotation_days: u64,
    pub issuer: String,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    pub gateway_secret: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QuotaConfig {
    pub storage_bytes: u64,
    pub analysis_minutes_per_month: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    pub ip_per_second: f64,
    pub ip_burst: u32,
    pub account_per_second: f64,
    pub account_burst: u32,
    pub auth_per_minute: f64,
    pub auth_burst: u32,
    pub lockout_after_failures: u32,
    pub lockout_max_seconds: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub max_connections: u32,
    pub acquire_timeout_seconds: u64,
    pub replica_url: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub path_style: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AmqpConfig {
    pub prefix: String,
    pub queue_expiry_seconds: u64,
    pub republish_after_seconds: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UploadConfig {
    pub max_bytes: u64,
    pub resumable_expiry_seconds: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    pub concurrency: usize,
    pub lease_seconds: u64,
    pub heartbeat_seconds: u64,
    pub max_attempts: u32,
    pub retry_base_seconds: f64,
    pub retry_max_seconds: f64,
    pub poll_interval_ms: u64,
    pub shutdown_grace_seconds: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MediaConfig {
    pub ffmpeg: String,
    pub ffprobe: String,
    pub probe_timeout_seconds: u64,
    pub analysis_timeout_seconds: u64,
    pub memory_limit_mb: u64,
    pub cpu_limit_seconds: u64,
    pub threads: u32,
    pub tesseract: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AnalysisConfig {
    pub cut_threshold: f64,
    pub min_shot_seconds: f64,
    pub frame_width: u32,
    pub skip_nonref_frames: bool,
    pub skip_b_frames: bool,
    pub decoders: u32,
    pub black_pixel_ratio: f64,
    pub black_pixel_luma: u8,
    pub black_min_seconds: f64,
    pub silence_noise_db: f64,
    pub silence_min_seconds: f64,
    pub keyframe_quality: u8,
    pub ocr_languages: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Values given on the command line; `None` leaves the lower layers in force.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addr: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
}

/// Why the configuration cannot be used: names the key and says how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("invalid configuration: {0}")]
    Parse(String),
    #[error("invalid configuration: `{key}` (env {env}): {message}")]
    Invalid {
        key: &'static str,
        env: &'static str,
        message: String,
    },
}

/// Where to look for the optional configuration file.
pub enum ConfigSource<'a> {
    /// `./vidsight.toml` when it exists, else only defaults + env.
    Default,
    /// This file, which must exist.
    File(&'a Path),
}

impl Config {
    /// Loads defaults → file → `VIDSIGHT_*` environment → overrides, then validates.
    pub fn load(source: ConfigSource<'_>, overrides: &Overrides) -> Result<Config, ConfigError> {
        Self::from_figment(Self::figment(source, overrides)?)
    }

    /// The layers, unextracted (tests use this with a jailed environment).
    pub fn figment(
        source: ConfigSource<'_>,
        overrides: &Overrides,
    ) -> Result<Figment, ConfigError> {
        let mut figment = Figment::from(Toml::string(REFERENCE_TOML));
        match source {
            ConfigSource::Default => {
                if Path::new("vidsight.toml").exists() {
                    figment = figment.merge(Toml::file("vidsight.toml"));
                }
            }
            ConfigSource::File(path) => {
                if !path.exists() {
                    return Err(ConfigError::File {
                        path: path.to_owned(),
                        message: "does not exist; create it or drop --config".into(),
                    });
                }
                figment = figment.merge(Toml::file(path));
            }
        }
        // the official SDKs' variable for the Gemini key; VIDSIGHT_* settings override it
        if let Ok(key) = std::env::var("GEMINI_API_KEY") {
            if !key.trim().is_empty() {
                figment = figment.merge(Serialized::default("providers.gemini.api_key", key));
            }
        }
        figment = figment.merge(
            Env::prefixed("VIDSIGHT_")
                .ignore(&["CONFIG", "GEMINI_BASE_URL"])
                .split("__")
                .map(|key| key.as_str().to_ascii_lowercase().into()),
        );
        // the Gemini endpoint has a name of its own (a fake in tests, a proxy in production)
        if let Ok(url) = std::env::var("VIDSIGHT_GEMINI_BASE_URL") {
            if !url.trim().is_empty() {
                figment = figment.merge(Serialized::default("providers.gemini.base_url", url));
            }
        }
        figment = figment.merge(Serialized::defaults(overrides));
        Ok(figment)
    }

    /// Defaults and this file only — no environment, no flags — for commands that load two
    /// configurations at once (`migrate-data --from … --to …`).
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        if !path.exists() {
            return Err(ConfigError::File {
                path: path.to_owned(),
                message: "does not exist".into(),
            });
        }
        Self::from_figment(Figment::from(Toml::string(REFERENCE_TOML)).merge(Toml::file(path)))
    }

    pub fn from_figment(figment: Figment) -> Result<Config, ConfigError> {
        let config: Config = figment
            .extract()
            .map_err(|error| ConfigError::Parse(describe_figment_error(error)))?;
        config.validate()?;
        Ok(config)
    }

    /// Cross-field checks that serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn invalid(
            key: &'static str,
            env: &'static str,
            message: impl Into<String>,
        ) -> ConfigError {
            ConfigError::Invalid {
                key,
                env,
                message: message.into(),
            }
        }
        let database = self.database_url();
        if !(database.starts_with("sqlite:")
            || database.starts_with("postgres://")
            || database.starts_with("postgresql://"))
        {
            return Err(invalid(
                "database_url",
                "VIDSIGHT_DATABASE_URL",
                format!(
                    "unsupported scheme in `{}`: use sqlite://path or postgres://user:password@host/db",
                    redact_url(&database)
                ),
            ));
        }
        let replica = &self.database.replica_url;
        if !replica.is_empty() && !replica.starts_with("postgres") {
            return Err(invalid(
                "database.replica_url",
                "VIDSIGHT_DATABASE__REPLICA_URL",
                "a read replica must be a postgres:// URL (or empty)",
            ));
        }
        if self.database.max_connections == 0 {
            return Err(invalid(
                "database.max_connections",
                "VIDSIGHT_DATABASE__MAX_CONNECTIONS",
                "must be at least 1",
            ));
        }
        let storage = self.storage_url();
        let storage_ok = storage.starts_with("file://")
            || storage.starts_with("memory://")
            || storage.starts_with("s3://");
        if !storage_ok {
            return Err(invalid(
                "storage_url",
                "VIDSIGHT_STORAGE_URL",
                format!(
                    "unsupported scheme in `{}`: use file:///absolute/path, s3://bucket[/prefix] or memory://",
                    redact_url(&storage)
                ),
            ));
        }
        let bucket = storage
            .strip_prefix("s3://")
            .map(|rest| rest.split('/').next().unwrap_or(""));
        if bucket == Some("") {
            return Err(invalid(
                "storage_url",
                "VIDSIGHT_STORAGE_URL",
                "an s3:// URL names a bucket: s3://bucket[/prefix]",
            ));
        }
        let endpoint = &self.s3.endpoint;
        let endpoint_ok = endpoint.is_empty()
            || endpoint.starts_with("http://")
            || endpoint.starts_with("https://");
        if !endpoint_ok {
            return Err(invalid(
                "s3.endpoint",
                "VIDSIGHT_S3__ENDPOINT",
                "must start with http:// or https://",
            ));
        }
        let queue_ok = self.queue_url == "database"
            || self.queue_url.starts_with("amqp://")
            || self.queue_url.starts_with("amqps://");
        if !queue_ok {
            return Err(invalid(
                "queue_url",
                "VIDSIGHT_QUEUE_URL",
                format!(
                    "unsupported queue `{}`: use `database` or amqp://user:password@host:5672/vhost",
                    redact_url(&self.queue_url)
                ),
            ));
        }
        let prefix_ok = !self.amqp.prefix.is_empty()
            && self
                .amqp
                .prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !prefix_ok {
            return Err(invalid(
                "amqp.prefix",
                "VIDSIGHT_AMQP__PREFIX",
                "use letters, digits, '-', '_' and '.'",
            ));
        }
        let cache_ok = self.cache_url.starts_with("memory://")
            || self.cache_url.starts_with("redis://")
            || self.cache_url.starts_with("rediss://");
        if !cache_ok {
            return Err(invalid(
                "cache_url",
                "VIDSIGHT_CACHE_URL",
                format!(
                    "unsupported cache `{}`: use memory:// or redis://host:6379/0",
                    redact_url(&self.cache_url)
                ),
            ));
        }
        if self.upload.max_bytes == 0 {
            return Err(invalid(
                "upload.max_bytes",
                "VIDSIGHT_UPLOAD__MAX_BYTES",
                "must be at least 1",
            ));
        }
        let worker = &self.worker;
        if worker.concurrency == 0 || worker.concurrency > 256 {
            return Err(invalid(
                "worker.concurrency",
                "VIDSIGHT_WORKER__CONCURRENCY",
                "must be between 1 and 256",
            ));
        }
        if worker.heartbeat_seconds == 0 || worker.heartbeat_seconds * 2 > worker.lease_seconds {
            return Err(invalid(
                "worker.heartbeat_seconds",
                "VIDSIGHT_WORKER__HEARTBEAT_SECONDS",
                format!(
                    "must be at least 1 and at most half of worker.lease_seconds ({}), so a live job never loses its lease",
                    worker.lease_seconds
                ),
            ));
        }
        if worker.max_attempts == 0 {
            return Err(invalid(
                "worker.max_attempts",
                "VIDSIGHT_WORKER__MAX_ATTEMPTS",
                "must be at least 1",
            ));
        }
        if !(worker.retry_base_seconds >= 0.0
            && worker.retry_max_seconds >= worker.retry_base_seconds)
        {
            return Err(invalid(
                "worker.retry_max_seconds",
                "VIDSIGHT_WORKER__RETRY_MAX_SECONDS",
                "must be at least worker.retry_base_seconds, and both non-negative",
            ));
        }
        if self.media.probe_timeout_seconds == 0 || self.media.analysis_timeout_seconds == 0 {
            return Err(invalid(
                "media.analysis_timeout_seconds",
                "VIDSIGHT_MEDIA__ANALYSIS_TIMEOUT_SECONDS",
                "timeouts must be at least 1 second",
            ));
        }
        let auth = &self.auth;
        if auth.access_token_minutes == 0 || auth.access_token_minutes > 24 * 60 {
            return Err(invalid(
                "auth.access_token_minutes",
                "VIDSIGHT_AUTH__ACCESS_TOKEN_MINUTES",
                "must be between 1 and 1440",
            ));
        }
        if auth.refresh_token_days == 0 || auth.key_rotation_days == 0 {
            return Err(invalid(
                "auth.refresh_token_days",
                "VIDSIGHT_AUTH__REFRESH_TOKEN_DAYS",
                "token lifetimes and the key rotation period must be at least 1 day",
            ));
        }
        if auth.argon2_memory_kib < 8 * auth.argon2_parallelism.max(1)
            || auth.argon2_iterations == 0
            || auth.argon2_parallelism == 0
        {
            return Err(invalid(
                "auth.argon2_memory_kib",
                "VIDSIGHT_AUTH__ARGON2_MEMORY_KIB",
                "argon2 needs at least 8 KiB per lane, 1 pass and 1 lane",
            ));
        }
        if !auth.gateway_secret.is_empty() && auth.gateway_secret.len() < 16 {
            return Err(invalid(
                "auth.gateway_secret",
                "VIDSIGHT_AUTH__GATEWAY_SECRET",
                "must be at least 16 characters (or empty to trust no gateway)",
            ));
        }
        let limits = &self.rate_limit;
        if !(limits.ip_per_second > 0.0
            && limits.account_per_second > 0.0
            && limits.auth_per_minute > 0.0)
            || limits.ip_burst == 0
            || limits.account_burst == 0
            || limits.auth_burst == 0
        {
            return Err(invalid(
                "rate_limit.ip_per_second",
                "VIDSIGHT_RATE_LIMIT__IP_PER_SECOND",
                "rates and bursts must be positive",
            ));
        }
        for origin in &self.http.cors_origins {
            if !(origin.starts_with("http://") || origin.starts_with("https://")) {
                return Err(invalid(
                    "http.cors_origins",
                    "VIDSIGHT_HTTP__CORS_ORIGINS",
                    format!("`{origin}` is not an origin like https://app.example.com"),
                ));
            }
        }
        let analysis = &self.analysis;
        if !(analysis.cut_threshold > 0.0 && analysis.cut_threshold <= 255.0) {
            return Err(invalid(
                "analysis.cut_threshold",
                "VIDSIGHT_ANALYSIS__CUT_THRESHOLD",
                "must be in (0, 255]",
            ));
        }
        if analysis.decoders > 64 {
            return Err(invalid(
                "analysis.decoders",
                "VIDSIGHT_ANALYSIS__DECODERS",
                "must be at most 64 (0 = one per CPU core)",
            ));
        }
        if !(16..=3840).contains(&analysis.frame_width) {
            return Err(invalid(
                "analysis.frame_width",
                "VIDSIGHT_ANALYSIS__FRAME_WIDTH",
                "must be between 16 and 3840",
            ));
        }
        if !(analysis.black_pixel_ratio > 0.0 && analysis.black_pixel_ratio <= 1.0) {
            return Err(invalid(
                "analysis.black_pixel_ratio",
                "VIDSIGHT_ANALYSIS__BLACK_PIXEL_RATIO",
                "must be in (0, 1]",
            ));
        }
        if analysis.silence_noise_db >= 0.0 {
            return Err(invalid(
                "analysis.silence_noise_db",
                "VIDSIGHT_ANALYSIS__SILENCE_NOISE_DB",
                "must be negative (dBFS)",
            ));
        }
        if !(1..=100).contains(&analysis.keyframe_quality) {
            return Err(invalid(
                "analysis.keyframe_quality",
                "VIDSIGHT_ANALYSIS__KEYFRAME_QUALITY",
                "must be between 1 and 100",
            ));
        }
        if !analysis
            .ocr_languages
            .chars()
            .all(|c| c.is_ascii_lowercase() || c == '_' || c == '+')
        {
            return Err(invalid(
                "analysis.ocr_languages",
                "VIDSIGHT_ANALYSIS__OCR_LANGUAGES",
                "must be Tesseract language codes joined by +, e.g. \"eng\" or \"eng+por\" (empty turns OCR off)",
            ));
        }
        Ok(())
    }

    /// The database URL, derived from `data_dir` when not set.
    pub fn database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!("sqlite://{}/vidsight.db", self.data_dir.display())
        } else {
            self.database_url.clone()
        }
    }

    /// The storage URL, derived from `data_dir` when not set.
    pub fn storage_url(&self) -> String {
        if self.storage_url.is_empty() {
            let dir = absolute(&self.data_dir).join("objects");
            format!("file://{}", dir.display())
        } else {
            self.storage_url.clone()
        }
    }

    /// Where temporary files (uploads being validated, downloads for analysis) go.
    pub fn tmp_dir(&self) -> PathBuf {
        self.data_dir.join("tmp")
    }

    /// The merged configuration as JSON with every secret replaced by `***`.
    pub fn redacted(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).expect("config serialises");
        if let Some(object) = value.as_object_mut() {
            object.insert("database_url".into(), self.database_url().into());
            object.insert("storage_url".into(), self.storage_url().into());
        }
        redact_value(&mut value, None);
        value
    }
}

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir()
            .map(|dir| dir.join(path))
            .unwrap_or_else(|_| path.to_owned())
    }
}

fn describe_figment_error(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|error| {
            let key = error.path.join(".");
            let env_hint = if key.is_empty() {
                String::new()
            } else {
                format!(
                    " (env VIDSIGHT_{})",
                    error.path.join("__").to_ascii_uppercase()
                )
            };
            if key.is_empty() {
                format!("{}", error.kind)
            } else {
                format!(
                    "`{key}`{env_hint}: {}; see config/vidsight.example.toml",
                    error.kind
                )
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Masks `user:password@` by hand, for strings the URL parser refuses.
fn redact_userinfo(text: &str) -> String {
    let Some(scheme_end) = text.find("://") else {
        return text.to_owned();
    };
    let authority_start = scheme_end + 3;
    let authority_end = text[authority_start..]
        .find(['/', '?', '#'])
        .map(|offset| authority_start + offset)
        .unwrap_or(text.len());
    let authority = &text[authority_start..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &text[..authority_start],
            &authority[..colon],
            &text[authority_start + at..]
        ),
        _ => text.to_owned(),
    }
}

const SECRET_WORDS: [&str; 5] = ["password", "secret", "token", "api_key", "apikey"];

fn redact_value(value: &mut serde_json::Value, key: Option<&str>) {
    match value {
        serde_json::Value::Object(map) => {
            for (child_key, child) in map.iter_mut() {
                redact_value(child, Some(child_key));
            }
        }
        serde_json::Value::Array(items) => {
            items.iter_mut().for_each(|item| redact_value(item, key))
        }
        serde_json::Value::String(text) => {
            let is_secret = key
                .map(|key| {
                    SECRET_WORDS
                        .iter()
                        .any(|word| key.to_ascii_lowercase().contains(word))
                })
                .unwrap_or(false);
            if is_secret && !text.is_empty() {
                *text = "***".into();
            } else if text.contains("://") {
                *text = redact_url(text);
            }
        }
        _ => {}
    }
}

/// Replaces the password of a URL (and secret-looking query parameters) with `***`.
pub fn redact_url(text: &str) -> String {
    let Ok(mut url) = url::Url::parse(text) else {
        return redact_userinfo(text);
    };
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(name, value)| {
                let secret = SECRET_WORDS
                    .iter()
                    .any(|word| name.to_ascii_lowercase().contains(word))
                    || name.eq_ignore_ascii_case("key");
                (
                    name.into_owned(),
                    if secret {
                        "***".into()
                    } else {
                        value.into_owned()
                    },
                )
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

#[cfg(test)]
// figment::Jail's closures return figment's own (large) error type
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    fn load_jailed(jail: &figment::Jail, overrides: &Overrides) -> Result<Config, ConfigError> {
        let _ = jail;
        Config::load(ConfigSource::Default, overrides)
    }

    #[test]
    fn defaults_are_the_reference_file_and_valid() {
        figment::Jail::expect_with(|jail| {
            let config = load_jailed(jail, &Overrides::default()).expect("defaults load");
            assert_eq!(config.addr.to_string(), "127.0.0.1:8080");
            assert_eq!(config.roles, Roles::all());
            assert_eq!(config.database_url(), "sqlite://./data/vidsight.db");
            assert!(config.storage_url().starts_with("file:///"));
            assert_eq!(config.worker.concurrency, 2);
            Ok(())
        });
    }

    #[test]
    fn layers_apply_in_order_file_env_flags() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "vidsight.toml",
                "addr = \"127.0.0.1:9000\"\nroles = \"api\"\n[worker]\nconcurrency = 3\n",
            )?;
            jail.set_env("VIDSIGHT_WORKER__CONCURRENCY", "5");
            jail.set_env("VIDSIGHT_DATA_DIR", "/tmp/vs");
            let config = load_jailed(jail, &Overrides::default()).unwrap();
            assert_eq!(config.addr.port(), 9000);
            assert_eq!(config.roles, Roles::parse("api").unwrap());
            assert_eq!(config.worker.concurrency, 5);
            assert_eq!(config.database_url(), "sqlite:///tmp/vs/vidsight.db");
            let overrides = Overrides {
                roles: Some("worker".into()),
                addr: Some("127.0.0.1:1".parse().unwrap()),
                data_dir: None,
            };
            let config = load_jailed(jail, &overrides).unwrap();
            assert_eq!(config.roles, Roles::parse("worker").unwrap());
            assert_eq!(config.addr.port(), 1);
            Ok(())
        });
    }

    #[test]
    fn too_many_decoders_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("VIDSIGHT_ANALYSIS__DECODERS", "1000");
            let error = load_jailed(jail, &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(error.contains("analysis.decoders"), "{error}");
            assert!(error.contains("VIDSIGHT_ANALYSIS__DECODERS"), "{error}");
            jail.set_env("VIDSIGHT_ANALYSIS__DECODERS", "64");
            assert!(load_jailed(jail, &Overrides::default()).is_ok());
            Ok(())
        });
    }

    #[test]
    fn invalid_values_name_the_key_and_env() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("VIDSIGHT_WORKER__CONCURRENCY", "0");
            let error = load_jailed(jail, &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(error.contains("worker.concurrency"), "{error}");
            assert!(error.contains("VIDSIGHT_WORKER__CONCURRENCY"), "{error}");
            jail.set_env("VIDSIGHT_WORKER__CONCURRENCY", "lots");
            let error = load_jailed(jail, &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(error.contains("worker.concurrency"), "{error}");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_schemes_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("vidsight.toml", "[worker]\nconcurency = 3\n")?;
            let error = load_jailed(jail, &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(error.contains("concurency"), "{error}");
            Ok(())
        });
        figment::Jail::expect_with(|jail| {
            jail.set_env("VIDSIGHT_DATABASE_URL", "mysql://root:hunter2@db/x");
            let error = load_jailed(jail, &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(error.contains("database_url"), "{error}");
            assert!(!error.contains("hunter2"), "password leaked: {error}");
            Ok(())
        });
        figment::Jail::expect_with(|jail| {
            jail.set_env("VIDSIGHT_ROLES", "api,gardener");
            let error = load_jailed(jail, &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(error.contains("gardener"), "{error}");
            Ok(())
        });
    }

    #[test]
    fn redaction_hides_passwords_and_keys() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/vs?sslmode=require&api_key=abc"),
            "postgres://app:***@db:5432/vs?sslmode=require&api_key=***"
        );
        figment::Jail::expect_with(|jail| {
            jail.set_env("VIDSIGHT_DATABASE_URL", "sqlite://user:pw@/tmp/x.db");
            // a sqlite URL with a password is odd but must still be redacted when shown
            let figment = Config::figment(ConfigSource::Default, &Overrides::default()).unwrap();
            let config: Config = figment.extract().unwrap();
            let shown = config.redacted().to_string();
            assert!(!shown.contains(":pw@"), "{shown}");
            Ok(())
        });
    }

    #[test]
    fn roles_parse() {
        assert_eq!(Roles::parse("all").unwrap(), Roles::all());
        assert_eq!(Roles::parse("api, worker").unwrap(), Roles::all());
        assert!(Roles::parse("").is_err());
        assert!(Roles::parse("api,x").is_err());
    }
}
