//! The `Accounts` implementation both SQL backends share (accounts, API keys, recovery
//! codes, the audit log, signing keys, usage): statements written once with `?N`
//! placeholders, as in `sql.rs`.
use crate::rows::*;
use crate::sql::{as_is, dollar_placeholders};
use crate::traits::*;
use crate::{PostgresStore, SqliteStore};
use async_trait::async_trait;
use std::str::FromStr;
use time::OffsetDateTime;
use vidsight_domain::{
    ApiKey, ApiKeyId, AuditEvent, AuditId, Error, ErrorCode, Result, Role, Scope, User, UserId,
};

/// The usage period (`YYYY-MM`, UTC) a Unix-millisecond time falls in.
pub fn period_of(ms: i64) -> String {
    let time = OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!("{:04}-{:02}", time.year(), time.month() as u8)
}

const USER_COLUMNS: &str = "id, email, password_hash, role, disabled, session_epoch, totp_secret, \
     totp_enabled, totp_last_step, quota_storage_bytes, quota_analysis_minutes, created_at";
const KEY_COLUMNS: &str =
    "id, user_id, name, prefix, key_hash, scopes, created_at, last_used_at, revoked_at";
const AUDIT_COLUMNS: &str = "id, at, event, user_id, actor_id, ip, user_agent, detail_json";

fn to_time(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn optional_id<T: FromStr>(text: Option<String>, what: &str) -> Result<Option<T>> {
    text.map(|text| parse_id(&text, what)).transpose()
}

fn user_from_row(row: &impl Columns) -> Result<UserRecord> {
    Ok(UserRecord {
        user: User {
            id: parse_id(&row.text("id")?, "user id")?,
            email: row.text("email")?,
            role: Role::from_str(&row.text("role")?).map_err(|_| corrupt("role"))?,
            disabled: row.int("disabled")? != 0,
            mfa_enabled: row.int("totp_enabled")? != 0,
            quota_storage_bytes: row.optional_int("quota_storage_bytes")?,
            quota_analysis_minutes: row.optional_int("quota_analysis_minutes")?,
            created_at: to_time(row.int("created_at")?),
        },
        password_hash: row.text("password_hash")?,
        session_epoch: row.int("session_epoch")?,
        totp_secret: row.optional_text("totp_secret")?,
        totp_last_step: row.optional_int("totp_last_step")?,
    })
}

fn key_from_row(row: &impl Columns) -> Result<ApiKeyRecord> {
    Ok(ApiKeyRecord {
        key: ApiKey {
            id: parse_id(&row.text("id")?, "api key id")?,
            user_id: parse_id(&row.text("user_id")?, "user id")?,
            name: row.text("name")?,
            prefix: row.text("prefix")?,
            scopes: Scope::parse_list(&row.text("scopes")?).map_err(|_| corrupt("scopes"))?,
            created_at: to_time(row.int("created_at")?),
            last_used_at: row.optional_int("last_used_at")?.map(to_time),
            revoked_at: row.optional_int("revoked_at")?.map(to_time),
        },
        key_hash: row.text("key_hash")?,
    })
}

fn audit_from_row(row: &impl Columns) -> Result<AuditEvent> {
    Ok(AuditEvent {
        id: parse_id(&row.text("id")?, "audit id")?,
        at: to_time(row.int("at")?),
        event: row.text("event")?,
        user_id: optional_id(row.optional_text("user_id")?, "user id")?,
        actor_id: optional_id(row.optional_text("actor_id")?, "user id")?,
        ip: row.optional_text("ip")?,
        user_agent: row.optional_text("user_agent")?,
        detail: serde_json::from_str(&row.text("detail_json")?)
            .map_err(|_| corrupt("audit detail"))?,
    })
}

/// A unique violation on `users.email` is a taken email, not the one-active-job rule.
fn user_write_error(error: sqlx::Error) -> Error {
    if let sqlx::Error::Database(database_error) = &error {
        if database_error.is_unique_violation() {
            return Error::new(
                ErrorCode::EmailTaken,
                "an account with this email already exists",
            );
        }
    }
    db_error(error)
}

fn page_cursor<T>(mut items: Vec<T>, limit: u32, id: impl Fn(&T) -> String) -> Page<T> {
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(id)
    } else {
        None
    };
    Page { items, next_cursor }
}

fn cursor<T: FromStr>(after: Option<&str>) -> Result<Option<String>> {
    match after {
        Some(text) => {
            T::from_str(text).map_err(|_| {
                Error::new(
                    ErrorCode::InvalidCursor,
                    "the cursor is not one this API gave out; start without it",
                )
            })?;
            Ok(Some(text.to_owned()))
        }
        None => Ok(None),
    }
}

macro_rules! impl_sql_accounts {
    ($store:ty, $sql:path, $lock_users:literal) => {
        #[async_trait]
        impl Accounts for $store {
            async fn create_user(
                &self,
                user: NewUser,
                first_is_admin: bool,
                only_if_first: bool,
            ) -> Result<UserRecord> {
                let now = now_ms();
                let mut tx = begin(self.pool()).await?;
                // SQLite: the transaction's first write takes the database's write lock;
                // PostgreSQL: a table lock, so two first registrations cannot both be first
                if !$lock_users.is_empty() {
                    sqlx::query($lock_users).execute(&mut *tx).await.map_err(db_error)?;
                }
                sqlx::query(&$sql("UPDATE users SET updated_at = updated_at WHERE id = ?1"))
                    .bind(user.id.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                if only_if_first {
                    let existing: i64 = sqlx::query_scalar(&$sql("SELECT COUNT(*) FROM users"))
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(db_error)?;
                    if existing > 0 {
                        return Err(Error::new(
                            ErrorCode::RegistrationClosed,
                            "registration is by invitation: ask an administrator for an account",
                        ));
                    }
                }
                sqlx::query(&$sql(&format!(
                    "INSERT INTO users (id, email, password_hash, role, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)"
                )))
                .bind(user.id.to_string())
                .bind(&user.email)
                .bind(&user.password_hash)
                .bind(user.role.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(user_write_error)?;
                if first_is_admin {
                    // the first account becomes admin (counted inside the transaction)
                    sqlx::query(&$sql("UPDATE users SET role = 'admin' WHERE id = ?1 AND (SELECT COUNT(*) FROM users) = 1"))
                        .bind(user.id.to_string())
                        .execute(&mut *tx)
                        .await
                        .map_err(db_error)?;
                }
                tx.commit().await.map_err(db_error)?;
                self.get_user(user.id)
                    .await?
                    .ok_or_else(|| Error::internal("user vanished after insert"))
            }

            async fn user_count(&self) -> Result<i64> {
                sqlx::query_scalar(&$sql("SELECT COUNT(*) FROM users"))
                    .fetch_one(self.pool())
                    .await
                    .map_err(db_error)
            }

            async fn get_user(&self, id: UserId) -> Result<Option<UserRecord>> {
                let row = sqlx::query(&$sql(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1")))
                    .bind(id.to_string())
                    .fetch_optional(self.pool())
                    .await
                    .map_err(db_error)?;
                row.as_ref().map(user_from_row).transpose()
            }

            async fn find_user_by_email(&self, email: &str) -> Result<Option<UserRecord>> {
                let row = sqlx::query(&$sql(&format!("SELECT {USER_COLUMNS} FROM users WHERE email = ?1")))
                    .bind(email)
                    .fetch_optional(self.pool())
                    .await
                    .map_err(db_error)?;
                row.as_ref().map(user_from_row).transpose()
            }

            async fn list_users(&self, after: Option<&str>, limit: u32) -> Result<Page<User>> {
                let after = cursor::<UserId>(after)?;
                let limit = limit.clamp(1, 200);
                let rows = sqlx::query(&$sql(&format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE (CAST(?1 AS TEXT) IS NULL OR id > ?1) ORDER BY id LIMIT ?2"
                )))
                .bind(after)
                .bind(limit as i64 + 1)
                .fetch_all(self.pool())
                .await
                .map_err(db_error)?;
                let users = rows
                    .iter()
                    .map(|row| user_from_row(row).map(|record| record.user))
                    .collect::<Result<Vec<_>>>()?;
                Ok(page_cursor(users, limit, |user| user.id.to_string()))
            }

            async fn update_user(&self, id: UserId, changes: UserChanges) -> Result<Option<User>> {
                let now = now_ms();
                let mut tx = begin(self.pool()).await?;
                let touched = sqlx::query(&$sql("UPDATE users SET updated_at = ?2 WHERE id = ?1"))
                    .bind(id.to_string())
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                if touched.rows_affected() == 0 {
                    return Ok(None);
                }
                if let Some(role) = changes.role {
                    sqlx::query(&$sql("UPDATE users SET role = ?2 WHERE id = ?1"))
                        .bind(id.to_string())
                        .bind(role.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(db_error)?;
                }
                if let Some(disabled) = changes.disabled {
                    // disabling ends every session
                    sqlx::query(&$sql("UPDATE users SET disabled = ?2, session_epoch = session_epoch + ?3 WHERE id = ?1"))
                        .bind(id.to_string())
                        .bind(disabled as i64)
                        .bind(disabled as i64)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_error)?;
                }
                if let Some(quota) = changes.quota_storage_bytes {
                    sqlx::query(&$sql("UPDATE users SET quota_storage_bytes = ?2 WHERE id = ?1"))
                        .bind(id.to_string())
                        .bind(quota)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_error)?;
                }
                if let Some(quota) = changes.quota_analysis_minutes {
                    sqlx::query(&$sql("UPDATE users SET quota_analysis_minutes = ?2 WHERE id = ?1"))
                        .bind(id.to_string())
                        .bind(quota)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_error)?;
                }
                tx.commit().await.map_err(db_error)?;
                Ok(self.get_user(id).await?.map(|record| record.user))
            }

            async fn set_password(&self, id: UserId, password_hash: &str) -> Result<()> {
                sqlx::query(&$sql("UPDATE users SET password_hash = ?2, session_epoch = session_epoch + 1, updated_at = ?3 WHERE id = ?1"))
                    .bind(id.to_string())
                    .bind(password_hash)
                    .bind(now_ms())
                    .execute(self.pool())
                    .await
                    .map_err(db_error)?;
                Ok(())
            }

            async fn end_sessions(&self, id: UserId) -> Result<()> {
                sqlx::query(&$sql("UPDATE users SET session_epoch = session_epoch + 1, updated_at = ?2 WHERE id = ?1"))
                    .bind(id.to_string())
                    .bind(now_ms())
                    .execute(self.pool())
                    .await
                    .map_err(db_error)?;
                Ok(())
            }

            async fn set_totp(
                &self,
                id: UserId,
                secret: Option<&str>,
                enabled: bool,
                recovery_code_hashes: &[String],
            ) -> Result<()> {
                let mut tx = begin(self.pool()).await?;
                sqlx::query(&$sql("UPDATE users SET totp_secret = ?2, totp_enabled = ?3, totp_last_step = NULL, updated_at = ?4 WHERE id = ?1"))
                    .bind(id.to_string())
                    .bind(secret)
                    .bind(enabled as i64)
                    .bind(now_ms())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                sqlx::query(&$sql("DELETE FROM recovery_codes WHERE user_id = ?1"))
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                for hash in recovery_code_hashes {
                    sqlx::query(&$sql("INSERT INTO recovery_codes (user_id, code_hash) VALUES (?1, ?2)"))
                        .bind(id.to_string())
                        .bind(hash)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_error)?;
                }
                tx.commit().await.map_err(db_error)
            }

            async fn use_totp_step(&self, id: UserId, step: i64) -> Result<bool> {
                let updated = sqlx::query(&$sql("UPDATE users SET totp_last_step = ?2 WHERE id = ?1 AND (totp_last_step IS NULL OR totp_last_step < ?2)"))
                    .bind(id.to_string())
                    .bind(step)
                    .execute(self.pool())
                    .await
                    .map_err(db_error)?;
                Ok(updated.rows_affected() == 1)
            }

            async fn use_recovery_code(&self, id: UserId, code_hash: &str) -> Result<bool> {
                let updated = sqlx::query(&$sql("UPDATE recovery_codes SET used_at = ?3 WHERE user_id = ?1 AND code_hash = ?2 AND used_at IS NULL"))
                    .bind(id.to_string())
                    .bind(code_hash)
                    .bind(now_ms())
                    .execute(self.pool())
                    .await
                    .map_err(db_error)?;
                Ok(updated.rows_affected() == 1)
            }

            async fn recovery_codes_left(&self, id: UserId) -> Result<i64> {
                sqlx::query_scalar(&$sql("SELECT COUNT(*) FROM recovery_codes WHERE user_id = ?1 AND used_at IS NULL"))
                    .bind(id.to_string())
                    .fetch_one(self.pool())
                    .await
                    .map_err(db_error)
            }

            async fn delete_user(&self, id: UserId) -> Result<Option<Vec<vidsight_domain::VideoId>>> {
                let id = id.to_string();
                let mut tx = begin(self.pool()).await?;
                // the user row first: from here on no upload can add a video for it
                let deleted = sqlx::query(&$sql("UPDATE users SET disabled = 1 WHERE id = ?1"))
                    .bind(&id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                if deleted.rows_affected() == 0 {
                    return Ok(None);
                }
                // analyses and jobs go with the videos (ON DELETE CASCADE); keys, recovery
                // codes and usage with the user
                let videos: Vec<String> = sqlx::query_scalar(&$sql("DELETE FROM videos WHERE owner_id = ?1 RETURNING id"))
                    .bind(&id)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db_error)?;
                for statement in [
                    "DELETE FROM search_index WHERE owner_id = ?1",
                    "DELETE FROM uploads WHERE owner_id = ?1",
                    "DELETE FROM audit_events WHERE user_id = ?1",
                    "UPDATE audit_events SET actor_id = NULL WHERE actor_id = ?1",
                    "DELETE FROM api_keys WHERE user_id = ?1",
                    "DELETE FROM recovery_codes WHERE user_id = ?1",
                    "DELETE FROM usage_ledger WHERE user_id = ?1",
                ] {
                    sqlx::query(&$sql(statement))
                        .bind(&id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_error)?;
                }
                sqlx::query(&$sql("DELETE FROM users WHERE id = ?1"))
                    .bind(&id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                videos
                    .iter()
                    .map(|video| parse_id(video, "video id"))
                    .collect::<Result<Vec<_>>>()
                    .map(Some)
            }

            async fn purge_audit_detail(&self, needle: &str) -> Result<u64> {
                let pattern = format!(
                    "%{}%",
                    needle.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
                );
                let deleted = sqlx::query(&$sql("DELETE FROM audit_events WHERE user_id IS NULL AND detail_json LIKE ?1 ESCAPE '\\'"))
                    .bind(pattern)
                    .execute(self.pool())
                    .await
                    .map_err(db_error)?;
                Ok(deleted.rows_affected())
            }

            async fn import_user(&self, record: &UserRecord) -> Result<bool> {
                let user = &record.user;
                let inserted = sqlx::query(&$sql(&format!(
                    "INSERT INTO users ({USER_COLUMNS}, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12) \
                     ON CONFLICT (id) DO NOTHING"
                )))
                .bind(user.id.to_string())
                .bind(&user.email)
                .bind(&record.password_hash)
                .bind(user.role.as_str())
                .bind(user.disabled as i64)
                .bind(record.session_epoch)
                .bind(record.totp_secret.as_deref())
                .bind(user.mfa_enabled as i64)
                .bind(record.totp_last_step)
                .bind(user.quota_storage_bytes)
                .bind(user.quota_analysis_minutes)
                .bind((user.created_at.unix_timestamp_nanos() / 1_000_000) as i64)
                .execute(self.pool())
                .await
                .map_err(user_write_error)?;
                Ok(inserted.rows_affected() > 0)
            }

            async fn create_api_key(&self, key: NewApiKey) -> Result<ApiKey> {
                sqlx::query(&$sql("INSERT INTO api_keys (id, user_id, name, prefix, key_hash, scopes, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"))
                    .bind(key.id.to_string())
                    .bind(key.user_id.to_string())
                    .bind(&key.name)
                    .bind(&key.prefix)
                    .bind(&key.key_hash)
                    .bind(Scope::join(&key.scopes))
                    .bind(now_ms())
                    .execute(self.pool())
                    .await
                    .map_err(db_error)?;
                let row = sqlx::query(&$sql(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?1")))
                    .bind(key.id.to_string())
                    .fetch_one(self.pool())
                    .await
                    .map_err(db_error)?;
                Ok(key_from_row(&row)?.key)
            }

            async fn find_api_key(&self, prefix: &str) -> Result<Option<ApiKeyRecord>> {
                let row = sqlx::query(&$sql(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE prefix = ?1")))
                    .bind(prefix)
                    .fetch_optional(self.pool())
                    .await
                    .map_err(db_error)?;
                row.as_ref().map(key_from_row).transpose()
            }

            async fn list_api_keys(&self, user_id: UserId) -> Result<Vec<ApiKey>> {
                let rows = sqlx::query(&$sql(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE user_id = ?1 ORDER BY id")))
                    .bind(user_id.to_string())
                    .fetch_all(self.pool())
                    .await
                    .map_err(db_error)?;
                rows.iter()
                    .map(|row| key_from_row(row).map(|record| record.key))
                    .collect()
            }

            async fn revoke_api_key(&self, user_id: UserId, id: ApiKeyId) -> Result<Option<ApiKey>> {
                sqlx::query(&$sql("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?3) WHERE id = ?1 AND user_id = ?2"))
                    .bind(id.to_string())
                    .bind(user_id.to_string())
                    .bind(now_ms())
                    .execute(self.pool())
                    .await
                    .map_err(db_error)?;
                let row = sqlx::query(&$sql(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?1 AND user_id = ?2")))
                    .bind(id.to_string())
                    .bind(user_id.to_string())
                    .fetch_optional(self.pool())
                    .await
                    .map_err(db_error)?;
                Ok(row.as_ref().map(key_from_row).transpose()?.map(|record| record.key))
            }

            async fn touch_api_key(&self, id: ApiKeyId) -> Result<()> {
                sqlx::query(&$sql("UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1"))
                    .bind(id.to_string())
                    .bind(now_ms())
                    .execute(self.pool())
                    .await
                    .map_err(db_error)?;
                Ok(())
            }

            async fn record_audit(&self, event: NewAuditEvent) -> Result<()> {
                let detail = serde_json::to_string(&event.detail)
                    .map_err(|error| Error::internal("audit detail").with_source(error))?;
                sqlx::query(&$sql(&format!("INSERT INTO audit_events ({AUDIT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")))
                    .bind(AuditId::new().to_string())
                    .bind(now_ms())
                    .bind(&event.event)
                    .bind(event.user_id.map(|id| id.to_string()))
                    .bind(event.actor_id.map(|id| id.to_string()))
                    .bind(event.ip.as_deref())
                    .bind(event.user_agent.as_deref())
                    .bind(detail)
                    .execute(self.pool())
                    .await
                    .map_err(db_error)?;
                Ok(())
            }

            async fn list_audit(&self, query: AuditQuery) -> Result<Page<AuditEvent>> {
                let before = cursor::<AuditId>(query.before.as_deref())?;
                let limit = query.limit.clamp(1, 500);
                let rows = sqlx::query(&$sql(&format!(
                    "SELECT {AUDIT_COLUMNS} FROM audit_events WHERE (CAST(?1 AS TEXT) IS NULL OR id < ?1) \
                     AND (CAST(?2 AS TEXT) IS NULL OR user_id = ?2 OR actor_id = ?2) \
                     AND (CAST(?3 AS TEXT) IS NULL OR event = ?3) ORDER BY id DESC LIMIT ?4"
                )))
                .bind(before)
                .bind(query.user_id.map(|id| id.to_string()))
                .bind(query.event)
                .bind(limit as i64 + 1)
                .fetch_all(self.pool())
                .await
                .map_err(db_error)?;
                let events = rows.iter().map(audit_from_row).collect::<Result<Vec<_>>>()?;
                Ok(page_cursor(events, limit, |event| event.id.to_string()))
            }

            async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>> {
                let rows = sqlx::query(&$sql("SELECT kid, private_key, public_key, created_at FROM signing_keys ORDER BY created_at DESC"))
                    .fetch_all(self.pool())
                    .await
                    .map_err(db_error)?;
                rows.iter()
                    .map(|row| {
                        Ok(StoredSigningKey {
                            kid: row.text("kid")?,
                            private_key: row.text("private_key")?,
                            public_key: row.text("public_key")?,
                            created_at_ms: row.int("created_at")?,
                        })
                    })
                    .collect()
            }

            async fn add_signing_key(&self, key: &StoredSigningKey) -> Result<()> {
                sqlx::query(&$sql("INSERT INTO signing_keys (kid, private_key, public_key, created_at) VALUES (?1, ?2, ?3, ?4)"))
                    .bind(&key.kid)
                    .bind(&key.private_key)
                    .bind(&key.public_key)
                    .bind(key.created_at_ms)
                    .execute(self.pool())
                    .await
                    .map_err(db_error)?;
                Ok(())
            }

            async fn delete_signing_keys_before(&self, created_before_ms: i64) -> Result<u64> {
                // the newest key always stays
                let deleted = sqlx::query(&$sql("DELETE FROM signing_keys WHERE created_at < ?1 \
                     AND kid <> (SELECT kid FROM signing_keys ORDER BY created_at DESC LIMIT 1)"))
                    .bind(created_before_ms)
                    .execute(self.pool())
                    .await
                    .map_err(db_error)?;
                Ok(deleted.rows_affected())
            }

            async fn usage(&self, user_id: UserId, period: &str) -> Result<Usage> {
                let storage: Option<i64> = sqlx::query_scalar(&$sql("SELECT CAST(SUM(size_bytes) AS BIGINT) FROM videos WHERE owner_id = ?1"))
                    .bind(user_id.to_string())
                    .fetch_one(self.pool())
                    .await
                    .map_err(db_error)?;
                let videos: i64 = sqlx::query_scalar(&$sql("SELECT COUNT(*) FROM videos WHERE owner_id = ?1"))
                    .bind(user_id.to_string())
                    .fetch_one(self.pool())
                    .await
                    .map_err(db_error)?;
                let ledger: Option<(i64, i64, i64)> = sqlx::query_as(&$sql("SELECT analysis_ms, provider_tokens, provider_cost_micros FROM usage_ledger WHERE user_id = ?1 AND period = ?2"))
                    .bind(user_id.to_string())
                    .bind(period)
                    .fetch_optional(self.pool())
                    .await
                    .map_err(db_error)?;
                let (analysis_ms, provider_tokens, provider_cost_micros) = ledger.unwrap_or_default();
                Ok(Usage {
                    period: period.to_owned(),
                    storage_bytes: storage.unwrap_or(0),
                    videos,
                    analysis_ms,
                    provider_tokens,
                    provider_cost_micros,
                })
            }
        }
    };
}

impl_sql_accounts!(SqliteStore, as_is, "");
impl_sql_accounts!(
    PostgresStore,
    dollar_placeholders,
    "LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE"
);
