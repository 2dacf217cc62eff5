//! The auth service: everything the API's identity routes do, independent of HTTP.
use crate::password::{check_password_policy, normalize_email, PasswordHasher};
use crate::secrets::{constant_time_eq, normalize_recovery_code, random_token, sha256_hex};
use crate::tokens::{now_ms, Claims, KeyRing, AUDIENCE};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use vidsight_cache::Cache;
use vidsight_config::{Config, Registration};
use vidsight_domain::{ApiKey, ApiKeyId, Error, ErrorCode, Result, Role, Scope, User, UserId};
use vidsight_store::{Accounts, NewApiKey, NewAuditEvent, NewUser, UserChanges, UserRecord};

/// Settings, from the configuration.
#[derive(Clone, Debug)]
pub struct AuthSettings {
    pub registration: Registration,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    /// A refresh token used again this soon after its first use is not treated as stolen.
    pub refresh_reuse_grace: Duration,
    pub key_rotation: Duration,
    pub issuer: String,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    pub lockout_after_failures: u32,
    pub lockout_max: Duration,
    /// Each account's bucket of password attempts (the per-IP sign-in bucket's sizes).
    pub attempts_per_minute: f64,
    pub attempts_burst: u32,
    /// Default quotas; 0 = unlimited.
    pub quota_storage_bytes: u64,
    pub quota_analysis_minutes: u64,
    /// Analysis-provider tokens per account and month; 0 = unlimited.
    pub quota_provider_tokens: u64,
}

impl AuthSettings {
    pub fn from_config(config: &Config) -> Self {
        let auth = &config.auth;
        Self {
            registration: auth.registration,
            access_ttl: Duration::from_secs(auth.access_token_minutes * 60),
            refresh_ttl: Duration::from_secs(auth.refresh_token_days * 86_400),
            refresh_reuse_grace: Duration::from_secs(auth.refresh_reuse_grace_seconds),
            key_rotation: Duration::from_secs(auth.key_rotation_days * 86_400),
            issuer: auth.issuer.clone(),
            argon2_memory_kib: auth.argon2_memory_kib,
            argon2_iterations: auth.argon2_iterations,
            argon2_parallelism: auth.argon2_parallelism,
            lockout_after_failures: config.rate_limit.lockout_after_failures.max(1),
            lockout_max: Duration::from_secs(config.rate_limit.lockout_max_seconds.max(1)),
            attempts_per_minute: config.rate_limit.auth_per_minute,
            attempts_burst: config.rate_limit.auth_burst.max(1),
            quota_storage_bytes: config.quota.storage_bytes,
            quota_analysis_minutes: config.quota.analysis_minutes_per_month,
            quota_provider_tokens: config.providers.tokens_per_month,
        }
    }
}

/// Who is making a request, for the audit log.
#[derive(Clone, Debug, Default)]
pub struct RequestContext {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// How a request proved who it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// An access token in `Authorization: Bearer`.
    Bearer {
        session_id: String,
    },
    /// An access token in the session cookie (writes need the CSRF header).
    Cookie {
        session_id: String,
    },
    ApiKey {
        id: ApiKeyId,
    },
    /// Identity headers from the trusted gateway; `api_key` says what the client showed it.
    Gateway {
        api_key: bool,
    },
}

/// The authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
    pub role: Role,
    /// What the credential allows: every scope for a session; an API key's own scopes.
    pub scopes: Vec<Scope>,
    pub credential: Credential,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin && self.scopes.contains(&Scope::Admin)
    }

    pub fn can_write(&self) -> bool {
        self.scopes.contains(&Scope::Write)
    }

    pub fn session_id(&self) -> Option<&str> {
        match &self.credential {
            Credential::Bearer { session_id } | Credential::Cookie { session_id } => {
                Some(session_id)
            }
            _ => None,
        }
    }

    fn all_scopes(role: Role) -> Vec<Scope> {
        match role {
            Role::Admin => vec![Scope::Read, Scope::Write, Scope::Admin],
            Role::Member => vec![Scope::Read, Scope::Write],
        }
    }
}

/// Tokens handed out at sign-in and refresh.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct IssuedTokens {
    pub access_token: String,
    /// `None` when the session store is unreachable: the access token still works, and the
    /// client signs in again when it expires.
    pub refresh_token: Option<String>,
    /// Seconds the access token is valid.
    pub expires_in: u64,
    pub refresh_expires_in: u64,
    pub session_id: String,
}

/// A started TOTP enrollment.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MfaEnrollment {
    pub secret: String,
    pub otpauth_uri: String,
    pub qr_svg: String,
}

/// Usage against limits.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct UsageReport {
    pub period: String,
    pub storage_bytes: i64,
    /// `None` = unlimited.
    pub storage_limit_bytes: Option<i64>,
    pub videos: i64,
    pub analysis_seconds: i64,
    pub analysis_limit_minutes: Option<i64>,
    /// Analysis-provider tokens this period, their cost, and the limit (`None` = unlimited).
    pub provider_tokens: i64,
    pub provider_cost_usd: f64,
    pub provider_tokens_limit: Option<i64>,
}

#[derive(Serialize, Deserialize)]
struct RefreshRecord {
    family: String,
    epoch: i64,
}

#[derive(Serialize, Deserialize)]
struct UserState {
    role: Role,
    disabled: bool,
    epoch: i64,
}

const USER_STATE_TTL: Duration = Duration::from_secs(30);

fn unauthorized(message: &str) -> Error {
    Error::new(ErrorCode::Unauthorized, message)
}

fn invalid_credentials() -> Error {
    Error::new(ErrorCode::InvalidCredentials, "wrong email or password")
}

/// Registration, sign-in, sessions, API keys, MFA, quotas and the audit trail.
pub struct AuthService {
    accounts: Arc<dyn Accounts>,
    cache: Arc<dyn Cache>,
    keys: KeyRing,
    hasher: PasswordHasher,
    settings: AuthSettings,
}

impl AuthService {
    pub async fn new(
        accounts: Arc<dyn Accounts>,
        cache: Arc<dyn Cache>,
        settings: AuthSettings,
    ) -> Result<Self> {
        let keys = KeyRing::open(
            accounts.clone(),
            settings.key_rotation,
            settings.access_ttl,
            settings.issuer.clone(),
        )
        .await?;
        let hasher = PasswordHasher::new(
            settings.argon2_memory_kib,
            settings.argon2_iterations,
            settings.argon2_parallelism,
        )?;
        Ok(Self {
            accounts,
            cache,
            keys,
            hasher,
            settings,
        })
    }

    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    pub fn accounts(&self) -> &Arc<dyn Accounts> {
        &self.accounts
    }

    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    /// Records a security event; a failure to record is logged, never fatal.
    pub async fn audit(
        &self,
        event: &str,
        user_id: Option<UserId>,
        actor_id: Option<UserId>,
        context: &RequestContext,
        detail: serde_json::Value,
    ) {
        let recorded = self
            .accounts
            .record_audit(NewAuditEvent {
                event: event.to_owned(),
                user_id,
                actor_id,
                ip: context.ip.clone(),
                user_agent: context
                    .user_agent
                    .as_ref()
                    .map(|agent| agent.chars().take(512).collect()),
                detail,
            })
            .await;
        if let Err(error) = recorded {
            tracing::error!(event, error = %error, "audit event not recorded");
        }
    }

    // ---- accounts

    /// Self-service registration: open, or only for the very first account when invite-only.
    /// The first account becomes admin.
    pub async fn register(
        &self,
        email: &str,
        password: &str,
        context: &RequestContext,
    ) -> Result<User> {
        let invite_only = self.settings.registration == Registration::Invite;
        if invite_only && self.accounts.user_count().await? > 0 {
            // (checked again atomically when the account is written)
            return Err(Error::new(
                ErrorCode::RegistrationClosed,
                "registration is by invitation: ask an administrator for an account",
            ));
        }
        let user = self
            .create_account(email, password, Role::Member, true, invite_only)
            .await?;
        self.audit(
            "user.registered",
            Some(user.id),
            None,
            context,
            serde_json::json!({ "role": user.role }),
        )
        .await;
        Ok(user)
    }

    /// Creates an account with a role (admins, the CLI). `first_is_admin` makes the first
    /// account admin whatever `role` says.
    pub async fn create_user(
        &self,
        email: &str,
        password: &str,
        role: Role,
        first_is_admin: bool,
    ) -> Result<User> {
        self.create_account(email, password, role, first_is_admin, false)
            .await
    }

    async fn create_account(
        &self,
        email: &str,
        password: &str,
        role: Role,
        first_is_admin: bool,
        only_if_first: bool,
    ) -> Result<User> {
        let email = normalize_email(email)?;
        check_password_policy(password, &email)?;
        let password_hash = self.hasher.hash(password).await?;
        let record = self
            .accounts
            .create_user(
                NewUser {
                    id: UserId::new(),
                    email,
                    password_hash,
                    role,
                },
                first_is_admin,
                only_if_first,
            )
            .await?;
        Ok(record.user)
    }

    pub async fn user(&self, id: UserId) -> Result<UserRecord> {
        self.accounts
            .get_user(id)
            .await?
            .ok_or_else(|| Error::not_found("user"))
    }

    /// Administrative changes; forgets the cached state so they apply at once.
    pub async fn update_user(&self, id: UserId, changes: UserChanges) -> Result<User> {
        let user = self
            .accounts
            .update_user(id, changes)
            .await?
            .ok_or_else(|| Error::not_found("user"))?;
        self.forget_user(id).await;
        Ok(user)
    }

    pub async fn change_password(
        &self,
        id: UserId,
        current: &str,
        new: &str,
        context: &RequestContext,
    ) -> Result<()> {
        let record = self.user(id).await?;
        self.confirm_password(&record, current).await?;
        self.set_password(&record, new).await?;
        self.audit(
            "password.changed",
            Some(id),
            None,
            context,
            serde_json::json!({}),
        )
        .await;
        Ok(())
    }

    /// Sets a password (checked against the policy) and ends every session.
    pub async fn set_password(&self, record: &UserRecord, password: &str) -> Result<()> {
        check_password_policy(password, &record.user.email)?;
        let hash = self.hasher.hash(password).await?;
        self.accounts.set_password(record.user.id, &hash).await?;
        self.forget_user(record.user.id).await;
        Ok(())
    }

    /// Erases the account's rows and its cached sessions (objects are the caller's).
    /// Returns the erased account's videos (their objects are the caller's to delete), or
    /// `None` when there was no such account.
    pub async fn erase_user(&self, id: UserId) -> Result<Option<Vec<vidsight_domain::VideoId>>> {
        let email = self
            .accounts
            .get_user(id)
            .await?
            .map(|record| record.user.email);
        let deleted = self.accounts.delete_user(id).await?;
        if let Some(email) = email {
            // failed sign-ins with this address from before the account existed
            let _ = self
                .accounts
                .purge_audit_detail(&sha256_hex(&email)[..16])
                .await;
            let _ = self.cache.delete(&Self::failures_key(&email)).await;
            let _ = self.cache.delete(&Self::lock_key(&email)).await;
        }
        self.forget_user(id).await;
        let _ = self.cache.delete_prefix(&format!("auth:rt:{id}:")).await;
        let _ = self.cache.delete_prefix(&format!("auth:rtu:{id}:")).await;
        Ok(deleted)
    }

    // ---- sign-in and sessions

    fn lock_key(email: &str) -> String {
        format!("auth:lock:{}", sha256_hex(email))
    }

    fn failures_key(email: &str) -> String {
        format!("auth:fail:{}", sha256_hex(email))
    }

    /// Refuses while the account is locked out after repeated failures.
    async fn check_lockout(&self, email: &str) -> Result<()> {
        let Ok(Some(value)) = self.cache.get(&Self::lock_key(email)).await else {
            return Ok(());
        };
        let until: i64 = std::str::from_utf8(&value)
            .ok()
            .and_then(|text| text.parse().ok())
            .unwrap_or(0);
        let wait_ms = until - now_ms();
        if wait_ms > 0 {
            return Err(Error::new(
                ErrorCode::RateLimited,
                "too many failed sign-ins for this account; wait before trying again",
            )
            .with_retry_after((wait_ms as u64).div_ceil(1000)));
        }
        Ok(())
    }

    /// A token from the account's attempt bucket (`rate_limit.auth_*`), taken atomically
    /// before the password is checked: parallel guesses cannot all slip in before the first
    /// failure locks the account.
    async fn take_attempt(&self, email: &str) -> Result<()> {
        let key = format!("auth:attempts:{}", sha256_hex(email));
        match self
            .cache
            .take_token(
                &key,
                self.settings.attempts_per_minute / 60.0,
                self.settings.attempts_burst,
            )
            .await
        {
            Ok(Some(wait)) => Err(Error::new(
                ErrorCode::RateLimited,
                "too many sign-in attempts for this account; wait before trying again",
            )
            .with_retry_after(wait.as_secs_f64().ceil() as u64)),
            Ok(None) => Ok(()),
            Err(error) => {
                tracing::warn!(error = %error, "attempt bucket unavailable");
                Ok(())
            }
        }
    }

    /// Checks the account's password for a sensitive change, under the sign-in lockout.
    async fn confirm_password(&self, record: &UserRecord, password: &str) -> Result<()> {
        let email = &record.user.email;
        self.check_lockout(email).await?;
        self.take_attempt(email).await?;
        if !self.hasher.verify(&record.password_hash, password).await {
            self.record_failure(email).await;
            return Err(Error::new(
                ErrorCode::InvalidCredentials,
                "the current password is wrong",
            ));
        }
        Ok(())
    }

    /// Counts a failure; from the threshold on, locks for 1 s, 2 s, 4 s, … (capped).
    async fn record_failure(&self, email: &str) {
        let Ok(failures) = self
            .cache
            .increment(&Self::failures_key(email), 1, Duration::from_secs(3600))
            .await
        else {
            return;
        };
        let over = failures - self.settings.lockout_after_failures as i64;
        if over >= 0 {
            let seconds = 2u64
                .saturating_pow(over.min(30) as u32)
                .min(self.settings.lockout_max.as_secs());
            let until = now_ms() + seconds as i64 * 1000;
            let _ = self
                .cache
                .set(
                    &Self::lock_key(email),
                    Bytes::from(until.to_string()),
                    Duration::from_secs(seconds),
                )
                .await;
        }
    }

    async fn clear_failures(&self, email: &str) {
        let _ = self.cache.delete(&Self::failures_key(email)).await;
        let _ = self.cache.delete(&Self::lock_key(email)).await;
    }

    /// Signs in with email and password, and `totp` (a code or a recovery code) when the
    /// account has MFA.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        totp: Option<&str>,
        context: &RequestContext,
    ) -> Result<IssuedTokens> {
        let email = email.trim().to_lowercase();
        self.check_lockout(&email).await?;
        self.take_attempt(&email).await?;
        let record = self.accounts.find_user_by_email(&email).await?;
        let Some(record) = record else {
            self.hasher.verify_decoy(password).await;
            self.record_failure(&email).await;
            self.audit(
                "login.failed",
                None,
                None,
                context,
                // a digest, not the address: no personal data about people without an account
                serde_json::json!({ "email_sha256": &sha256_hex(&email)[..16], "reason": "unknown-email" }),
            )
            .await;
            return Err(invalid_credentials());
        };
        let id = record.user.id;
        if !self.hasher.verify(&record.password_hash, password).await {
            self.record_failure(&email).await;
            self.audit(
                "login.failed",
                Some(id),
                None,
                context,
                serde_json::json!({ "reason": "wrong-password" }),
            )
            .await;
            return Err(invalid_credentials());
        }
        if record.user.disabled {
            self.audit(
                "login.failed",
                Some(id),
                None,
                context,
                serde_json::json!({ "reason": "disabled" }),
            )
            .await;
            return Err(Error::new(
                ErrorCode::AccountDisabled,
                "this account is disabled; contact an administrator",
            ));
        }
        if record.user.mfa_enabled {
            let Some(code) = totp.map(str::trim).filter(|code| !code.is_empty()) else {
                return Err(Error::new(
                    ErrorCode::MfaRequired,
                    "this account uses two-factor authentication: send `totp` with a code from the authenticator app or a recovery code",
                ));
            };
            if let Err(error) = self.check_second_factor(&record, code, context).await {
                self.record_failure(&email).await;
                self.audit(
                    "login.failed",
                    Some(id),
                    None,
                    context,
                    serde_json::json!({ "reason": "wrong-mfa-code" }),
                )
                .await;
                return Err(error);
            }
        }
        self.clear_failures(&email).await;
        let tokens = self
            .issue(&record, &crate::secrets::random_hex::<16>())
            .await?;
        self.audit(
            "login.succeeded",
            Some(id),
            None,
            context,
            serde_json::json!({ "session": tokens.session_id, "mfa": record.user.mfa_enabled }),
        )
        .await;
        Ok(tokens)
    }

    /// A TOTP code (used once) or an unspent recovery code.
    async fn check_second_factor(
        &self,
        record: &UserRecord,
        code: &str,
        context: &RequestContext,
    ) -> Result<()> {
        let wrong = || {
            Error::new(
                ErrorCode::InvalidMfaCode,
                "the two-factor code is wrong or was already used",
            )
        };
        let compact: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if compact.len() == 6 && compact.bytes().all(|byte| byte.is_ascii_digit()) {
            let secret = record.totp_secret.as_deref().ok_or_else(wrong)?;
            let now = (now_ms() / 1000) as u64;
            let step = crate::totp::verify(secret, &compact, now).ok_or_else(wrong)?;
            if !self
                .accounts
                .use_totp_step(record.user.id, step as i64)
                .await?
            {
                return Err(wrong());
            }
            return Ok(());
        }
        let hash = sha256_hex(&normalize_recovery_code(code));
        if self
            .accounts
            .use_recovery_code(record.user.id, &hash)
            .await?
        {
            let left = self.accounts.recovery_codes_left(record.user.id).await?;
            self.audit(
                "mfa.recovery_code_used",
                Some(record.user.id),
                None,
                context,
                serde_json::json!({ "left": left }),
            )
            .await;
            return Ok(());
        }
        Err(wrong())
    }

    async fn issue(&self, record: &UserRecord, family: &str) -> Result<IssuedTokens> {
        let now = now_ms() / 1000;
        let claims = Claims {
            iss: self.settings.issuer.clone(),
            aud: AUDIENCE.to_owned(),
            sub: record.user.id.to_string(),
            role: record.user.role.as_str().to_owned(),
            sid: family.to_owned(),
            epoch: record.session_epoch,
            iat: now,
            exp: now + self.settings.access_ttl.as_secs() as i64,
            jti: crate::secrets::random_hex::<12>(),
        };
        let access_token = self.keys.sign(&claims).await?;
        let user = record.user.id;
        let refresh_token = format!("vsr_{}_{}", user.as_uuid().simple(), random_token());
        let stored = serde_json::to_vec(&RefreshRecord {
            family: family.to_owned(),
            epoch: record.session_epoch,
        })
        .map_err(|error| Error::internal("refresh record").with_source(error))?;
        let stored = self
            .cache
            .set(
                &format!("auth:rt:{user}:{}", sha256_hex(&refresh_token)),
                Bytes::from(stored),
                self.settings.refresh_ttl,
            )
            .await;
        if let Err(error) = &stored {
            tracing::warn!(error = %error, "session store unavailable: issuing an access token without a refresh token");
        }
        Ok(IssuedTokens {
            access_token,
            refresh_token: stored.is_ok().then_some(refresh_token),
            expires_in: self.settings.access_ttl.as_secs(),
            refresh_expires_in: self.settings.refresh_ttl.as_secs(),
            session_id: family.to_owned(),
        })
    }

    fn refresh_owner(token: &str) -> Option<UserId> {
        let mut parts = token.splitn(3, '_');
        if parts.next() != Some("vsr") {
            return None;
        }
        let user = parts.next()?;
        parts.next()?;
        uuid::Uuid::parse_str(user).ok().map(UserId::from)
    }

    /// Trades a refresh token for new tokens (the old one is spent). A spent token presented
    /// again means it was stolen or replayed: the whole session family is revoked.
    pub async fn refresh(&self, token: &str, context: &RequestContext) -> Result<IssuedTokens> {
        let invalid = || unauthorized("the refresh token is not valid; sign in again");
        let user_id = Self::refresh_owner(token).ok_or_else(invalid)?;
        let hash = sha256_hex(token);
        let stored = self
            .cache
            .get(&format!("auth:rt:{user_id}:{hash}"))
            .await
            .map_err(session_store_down)?
            .ok_or_else(invalid)?;
        let stored: RefreshRecord = serde_json::from_slice(&stored).map_err(|_| invalid())?;
        if self.family_revoked(&stored.family).await {
            return Err(invalid());
        }
        let uses = self
            .cache
            .increment(
                &format!("auth:rtu:{user_id}:{hash}"),
                1,
                self.settings.refresh_ttl,
            )
            .await
            .map_err(session_store_down)?;
        let used_at_key = format!("auth:rtt:{user_id}:{hash}");
        if uses == 1 {
            let _ = self
                .cache
                .set(
                    &used_at_key,
                    Bytes::from(now_ms().to_string()),
                    self.settings.refresh_reuse_grace + Duration::from_secs(1),
                )
                .await;
        }
        // two tabs (or a retried request) refreshing with the same token at nearly the same
        // moment are not a theft: within the grace period both get tokens
        let within_grace = uses > 1
            && !self.settings.refresh_reuse_grace.is_zero()
            && matches!(
                self.cache.get(&used_at_key).await,
                Ok(Some(at)) if std::str::from_utf8(&at)
                    .ok()
                    .and_then(|text| text.parse::<i64>().ok())
                    .is_some_and(|at| now_ms() - at <= self.settings.refresh_reuse_grace.as_millis() as i64)
            );
        if uses > 1 && !within_grace {
            self.revoke_family(&stored.family).await?;
            self.audit(
                "session.reuse_detected",
                Some(user_id),
                None,
                context,
                serde_json::json!({ "session": stored.family }),
            )
            .await;
            return Err(unauthorized(
                "this refresh token was already used: every token of its session is now revoked; sign in again",
            ));
        }
        let record = self.accounts.get_user(user_id).await?.ok_or_else(invalid)?;
        if record.user.disabled || record.session_epoch != stored.epoch {
            return Err(invalid());
        }
        self.issue(&record, &stored.family).await
    }

    async fn family_revoked(&self, family: &str) -> bool {
        match self.cache.get(&format!("auth:rf:{family}")).await {
            Ok(value) => value.is_some(),
            Err(error) => {
                // an unreachable session store must not lock everyone out: signed-out
                // sessions stay usable until their access token expires
                tracing::warn!(error = %error, "session revocation list unavailable");
                false
            }
        }
    }

    async fn revoke_family(&self, family: &str) -> Result<()> {
        self.cache
            .set(
                &format!("auth:rf:{family}"),
                Bytes::from_static(b"1"),
                self.settings.refresh_ttl,
            )
            .await
            .map_err(session_store_down)
    }

    /// Signs out one session: its refresh tokens and access tokens stop working.
    pub async fn logout(
        &self,
        principal: Option<&Principal>,
        refresh_token: Option<&str>,
        context: &RequestContext,
    ) -> Result<()> {
        let mut family = principal.and_then(|principal| principal.session_id().map(str::to_owned));
        let mut user = principal.map(|principal| principal.user_id);
        if let Some(token) = refresh_token {
            if let Some(owner) = Self::refresh_owner(token) {
                let key = format!("auth:rt:{owner}:{}", sha256_hex(token));
                if let Ok(Some(stored)) = self.cache.get(&key).await {
                    if let Ok(stored) = serde_json::from_slice::<RefreshRecord>(&stored) {
                        family = Some(stored.family);
                        user = Some(owner);
                    }
                }
            }
        }
        if let Some(family) = family {
            self.revoke_family(&family).await?;
            self.audit(
                "logout",
                user,
                None,
                context,
                serde_json::json!({ "session": family }),
            )
            .await;
        }
        Ok(())
    }

    /// Ends every session of the account.
    pub async fn logout_everywhere(&self, id: UserId, context: &RequestContext) -> Result<()> {
        self.accounts.end_sessions(id).await?;
        self.forget_user(id).await;
        self.audit(
            "logout.everywhere",
            Some(id),
            None,
            context,
            serde_json::json!({}),
        )
        .await;
        Ok(())
    }

    async fn user_state(&self, id: UserId) -> Result<Option<UserState>> {
        let key = format!("auth:user:{id}");
        if let Ok(Some(bytes)) = self.cache.get(&key).await {
            if let Ok(state) = serde_json::from_slice(&bytes) {
                return Ok(Some(state));
            }
        }
        let Some(record) = self.accounts.get_user(id).await? else {
            return Ok(None);
        };
        let state = UserState {
            role: record.user.role,
            disabled: record.user.disabled,
            epoch: record.session_epoch,
        };
        if let Ok(bytes) = serde_json::to_vec(&state) {
            let _ = self
                .cache
                .set(&key, Bytes::from(bytes), USER_STATE_TTL)
                .await;
        }
        Ok(Some(state))
    }

    /// Drops the cached account state after a change (role, disabled, password, deletion).
    pub async fn forget_user(&self, id: UserId) {
        let _ = self.cache.delete(&format!("auth:user:{id}")).await;
    }

    /// Verifies an access token and that its session and account are still good.
    pub async fn authenticate_token(&self, token: &str, from_cookie: bool) -> Result<Principal> {
        let claims = self.keys.verify(token).await?;
        let user_id = UserId::from_str(&claims.sub)
            .map_err(|_| unauthorized("the access token is not valid"))?;
        if self.family_revoked(&claims.sid).await {
            return Err(unauthorized("this session was signed out; sign in again"));
        }
        let state = self
            .user_state(user_id)
            .await?
            .ok_or_else(|| unauthorized("the account no longer exists"))?;
        if state.disabled {
            return Err(Error::new(
                ErrorCode::AccountDisabled,
                "this account is disabled",
            ));
        }
        if state.epoch != claims.epoch {
            return Err(unauthorized(
                "this session has ended (password change or sign-out everywhere); sign in again",
            ));
        }
        let session_id = claims.sid;
        Ok(Principal {
            user_id,
            role: state.role,
            scopes: Principal::all_scopes(state.role),
            credential: if from_cookie {
                Credential::Cookie { session_id }
            } else {
                Credential::Bearer { session_id }
            },
        })
    }

    // ---- API keys

    /// Creates a key (`vsk_<prefix>_<secret>`); the whole key is returned once.
    pub async fn create_api_key(
        &self,
        principal: &Principal,
        name: &str,
        scopes: Vec<Scope>,
        context: &RequestContext,
    ) -> Result<(ApiKey, String)> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                "the key needs a name of 1 to 100 characters",
            ));
        }
        if scopes.is_empty() {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                "give at least one scope: read, write or admin",
            ));
        }
        if scopes.contains(&Scope::Admin) && !principal.is_admin() {
            return Err(Error::new(
                ErrorCode::Forbidden,
                "only administrators can create keys with the admin scope",
            ));
        }
        let prefix = crate::secrets::random_hex::<6>();
        let secret = format!("vsk_{prefix}_{}", random_token());
        let key = self
            .accounts
            .create_api_key(NewApiKey {
                id: ApiKeyId::new(),
                user_id: principal.user_id,
                name: name.to_owned(),
                prefix: prefix.clone(),
                key_hash: sha256_hex(&secret),
                scopes,
            })
            .await?;
        self.audit(
            "apikey.created",
            Some(principal.user_id),
            None,
            context,
            serde_json::json!({ "key": key.id, "prefix": prefix, "scopes": key.scopes }),
        )
        .await;
        Ok((key, secret))
    }

    pub async fn revoke_api_key(
        &self,
        principal: &Principal,
        id: ApiKeyId,
        context: &RequestContext,
    ) -> Result<ApiKey> {
        let key = self
            .accounts
            .revoke_api_key(principal.user_id, id)
            .await?
            .ok_or_else(|| Error::not_found("API key"))?;
        self.audit(
            "apikey.revoked",
            Some(principal.user_id),
            None,
            context,
            serde_json::json!({ "key": key.id, "prefix": key.prefix }),
        )
        .await;
        Ok(key)
    }

    /// Checks an API key: known prefix, matching hash, not revoked, account enabled.
    pub async fn authenticate_api_key(&self, key: &str) -> Result<Principal> {
        let invalid = || unauthorized("the API key is not valid");
        let mut parts = key.splitn(3, '_');
        if parts.next() != Some("vsk") {
            return Err(invalid());
        }
        let prefix = parts.next().ok_or_else(invalid)?;
        parts.next().ok_or_else(invalid)?;
        let record = self
            .accounts
            .find_api_key(prefix)
            .await?
            .ok_or_else(invalid)?;
        if !constant_time_eq(sha256_hex(key).as_bytes(), record.key_hash.as_bytes()) {
            return Err(invalid());
        }
        if record.key.revoked_at.is_some() {
            return Err(unauthorized("the API key was revoked"));
        }
        let state = self
            .user_state(record.key.user_id)
            .await?
            .ok_or_else(invalid)?;
        if state.disabled {
            return Err(Error::new(
                ErrorCode::AccountDisabled,
                "this account is disabled",
            ));
        }
        let stale = record
            .key
            .last_used_at
            .is_none_or(|used| (time::OffsetDateTime::now_utc() - used).whole_seconds() > 60);
        if stale {
            // at most one write a minute per key
            let _ = self.accounts.touch_api_key(record.key.id).await;
        }
        let mut scopes = record.key.scopes.clone();
        if state.role != Role::Admin {
            scopes.retain(|scope| *scope != Scope::Admin);
        }
        Ok(Principal {
            user_id: record.key.user_id,
            role: state.role,
            scopes,
            credential: Credential::ApiKey { id: record.key.id },
        })
    }

    /// The principal for identity headers from the trusted gateway.
    pub async fn gateway_principal(
        &self,
        user_id: UserId,
        role: Role,
        scopes: Vec<Scope>,
        api_key: bool,
    ) -> Result<Principal> {
        // the gateway verified the credential; the account may have been disabled since
        let state = self
            .user_state(user_id)
            .await?
            .ok_or_else(|| unauthorized("the account no longer exists"))?;
        if state.disabled {
            return Err(Error::new(
                ErrorCode::AccountDisabled,
                "this account is disabled",
            ));
        }
        let mut scopes = scopes;
        if state.role != Role::Admin {
            scopes.retain(|scope| *scope != Scope::Admin);
        }
        Ok(Principal {
            user_id,
            // the lesser role: a gateway cannot grant more than the account has
            role: if state.role == Role::Admin && role == Role::Admin {
                Role::Admin
            } else {
                Role::Member
            },
            scopes,
            credential: Credential::Gateway { api_key },
        })
    }

    // ---- MFA

    /// Starts TOTP enrollment: a new secret (pending until confirmed).
    pub async fn mfa_enroll(&self, id: UserId) -> Result<MfaEnrollment> {
        let record = self.user(id).await?;
        if record.user.mfa_enabled {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                "two-factor authentication is already on; turn it off first to re-enroll",
            ));
        }
        let secret = crate::totp::new_secret();
        self.accounts
            .set_totp(id, Some(&secret), false, &[])
            .await?;
        let otpauth_uri =
            crate::totp::otpauth_uri(&secret, &record.user.email, &self.settings.issuer)?;
        let qr_svg = crate::totp::qr_svg(&otpauth_uri)?;
        Ok(MfaEnrollment {
            secret,
            otpauth_uri,
            qr_svg,
        })
    }

    /// Confirms enrollment with a current code; returns ten one-time recovery codes.
    pub async fn mfa_confirm(
        &self,
        id: UserId,
        code: &str,
        context: &RequestContext,
    ) -> Result<Vec<String>> {
        let record = self.user(id).await?;
        let Some(secret) = record
            .totp_secret
            .clone()
            .filter(|_| !record.user.mfa_enabled)
        else {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                "no enrollment is pending: start one with POST /api/v1/auth/mfa/totp",
            ));
        };
        let now = (now_ms() / 1000) as u64;
        let step = crate::totp::verify(&secret, code, now).ok_or_else(|| {
            Error::new(
                ErrorCode::InvalidMfaCode,
                "the code does not match; check the device's clock",
            )
        })?;
        let codes: Vec<String> = (0..10).map(|_| crate::secrets::recovery_code()).collect();
        let hashes: Vec<String> = codes
            .iter()
            .map(|code| sha256_hex(&normalize_recovery_code(code)))
            .collect();
        self.accounts
            .set_totp(id, Some(&secret), true, &hashes)
            .await?;
        self.accounts.use_totp_step(id, step as i64).await?;
        self.audit(
            "mfa.enabled",
            Some(id),
            None,
            context,
            serde_json::json!({}),
        )
        .await;
        Ok(codes)
    }

    /// Turns MFA off; needs the password and a current code (or a recovery code).
    pub async fn mfa_disable(
        &self,
        id: UserId,
        password: &str,
        code: &str,
        context: &RequestContext,
    ) -> Result<()> {
        let record = self.user(id).await?;
        self.confirm_password(&record, password).await?;
        if record.user.mfa_enabled {
            self.check_second_factor(&record, code, context).await?;
        }
        self.accounts.set_totp(id, None, false, &[]).await?;
        self.audit(
            "mfa.disabled",
            Some(id),
            None,
            context,
            serde_json::json!({}),
        )
        .await;
        Ok(())
    }

    // ---- quotas

    pub async fn usage(&self, user: &User) -> Result<UsageReport> {
        let period = vidsight_store::accounts::period_of(now_ms());
        let usage = self.accounts.usage(user.id, &period).await?;
        let limit = |own: Option<i64>, default: u64| {
            own.or((default > 0).then_some(default as i64))
                .filter(|limit| *limit > 0)
        };
        Ok(UsageReport {
            period,
            storage_bytes: usage.storage_bytes,
            storage_limit_bytes: limit(user.quota_storage_bytes, self.settings.quota_storage_bytes),
            videos: usage.videos,
            analysis_seconds: usage.analysis_ms / 1000,
            analysis_limit_minutes: limit(
                user.quota_analysis_minutes,
                self.settings.quota_analysis_minutes,
            ),
            provider_tokens: usage.provider_tokens,
            provider_cost_usd: usage.provider_cost_micros as f64 / 1e6,
            provider_tokens_limit: limit(None, self.settings.quota_provider_tokens),
        })
    }

    /// Refuses with `quota_exceeded` when adding `bytes` of storage or `analysis_seconds` of
    /// analysis would pass the account's limits.
    pub async fn check_quota(
        &self,
        user_id: UserId,
        bytes: i64,
        analysis_seconds: f64,
    ) -> Result<()> {
        let record = self.user(user_id).await?;
        let report = self.usage(&record.user).await?;
        if let Some(limit) = report.storage_limit_bytes {
            if report.storage_bytes + bytes > limit {
                return Err(Error::new(
                    ErrorCode::QuotaExceeded,
                    format!(
                        "storage quota exceeded: the limit is {limit} bytes, {} are used and this video needs {bytes}",
                        report.storage_bytes
                    ),
                ));
            }
        }
        if let Some(minutes) = report.analysis_limit_minutes {
            let used = report.analysis_seconds as f64;
            if used + analysis_seconds > minutes as f64 * 60.0 {
                return Err(Error::new(
                    ErrorCode::QuotaExceeded,
                    format!(
                        "analysis quota exceeded: the limit is {minutes} minutes per month ({}), {:.1} are used and this video needs {:.1}",
                        report.period,
                        used / 60.0,
                        analysis_seconds / 60.0
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn session_store_down(error: Error) -> Error {
    Error::new(
        ErrorCode::StorageUnavailable,
        "the session store is unavailable",
    )
    .with_source(error)
}
