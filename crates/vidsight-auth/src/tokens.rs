//! Access tokens: JWTs signed with Ed25519 (`alg: EdDSA`) carrying the signing key's `kid`.
//! The key ring lives in the database, so every API process signs and verifies with the
//! same keys. A new key is made when the newest is older than the rotation period; older
//! keys keep verifying until every token they signed has expired, then they are deleted.
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, RwLock};
use vidsight_domain::{Error, ErrorCode, Result};
use vidsight_store::{Accounts, StoredSigningKey};

/// The `aud` of access tokens.
pub const AUDIENCE: &str = "vidsight-api";

/// What an access token says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The user id.
    pub sub: String,
    /// `admin` or `member` when issued.
    pub role: String,
    /// The session (refresh-token family) it belongs to; signing out revokes it.
    pub sid: String,
    /// The account's session epoch when issued.
    pub epoch: i64,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

struct LoadedKey {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    public_x: String,
    created_at_ms: i64,
}

fn load(key: &StoredSigningKey) -> Result<LoadedKey> {
    let private = STANDARD
        .decode(&key.private_key)
        .map_err(|_| Error::internal("stored signing key is not base64"))?;
    Ok(LoadedKey {
        kid: key.kid.clone(),
        encoding: EncodingKey::from_ed_der(&private),
        decoding: DecodingKey::from_ed_components(&key.public_key)
            .map_err(|_| Error::internal("stored public key is not base64url"))?,
        public_x: key.public_key.clone(),
        created_at_ms: key.created_at_ms,
    })
}

/// A fresh Ed25519 key pair, as stored.
pub fn generate_key(now_ms: i64) -> Result<StoredSigningKey> {
    let signing = ed25519_dalek::SigningKey::from_bytes(&crate::secrets::random_bytes::<32>());
    // PKCS#8 v1 (no embedded public key): what most tools read
    let der = ed25519_dalek::pkcs8::KeypairBytes {
        secret_key: signing.to_bytes(),
        public_key: None,
    }
    .to_pkcs8_der()
    .map_err(|error| Error::internal(format!("PKCS#8 encoding failed: {error}")))?;
    Ok(StoredSigningKey {
        kid: crate::secrets::random_hex::<8>(),
        private_key: STANDARD.encode(der.as_bytes()),
        public_key: URL_SAFE_NO_PAD.encode(signing.verifying_key().to_bytes()),
        created_at_ms: now_ms,
    })
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}

fn unauthorized(message: &str) -> Error {
    Error::new(ErrorCode::Unauthorized, message)
}

/// Signs and verifies access tokens.
pub struct KeyRing {
    accounts: Arc<dyn Accounts>,
    /// Newest first.
    keys: RwLock<Vec<LoadedKey>>,
    rotation: Duration,
    token_lifetime: Duration,
    issuer: String,
    /// When the ring was last read for an unknown `kid` (held while reading).
    reloads: Mutex<Reloads>,
    /// Reads of the ring begun, and the highest-numbered read that has finished.
    reads_started: AtomicU64,
    reads_finished: AtomicU64,
}

struct Reloads {
    last: Instant,
}

/// A token with an unknown `kid` reads the ring again at most this often, so forged tokens
/// cannot turn into a query each.
const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

impl KeyRing {
    /// Loads the keys, making the first one (or a rotated one) when needed.
    pub async fn open(
        accounts: Arc<dyn Accounts>,
        rotation: Duration,
        token_lifetime: Duration,
        issuer: String,
    ) -> Result<Self> {
        let ring = Self {
            accounts,
            keys: RwLock::new(Vec::new()),
            rotation,
            token_lifetime,
            issuer,
            reloads: Mutex::new(Reloads {
                last: Instant::now(),
            }),
            reads_started: AtomicU64::new(0),
            reads_finished: AtomicU64::new(0),
        };
        ring.reload().await?;
        ring.rotate_if_due().await?;
        Ok(ring)
    }

    async fn reload(&self) -> Result<()> {
        let read = self.reads_started.fetch_add(1, Ordering::AcqRel) + 1;
        let stored = self.accounts.signing_keys().await?;
        let loaded = stored.iter().map(load).collect::<Result<Vec<_>>>()?;
        *self.keys.write().await = loaded;
        self.reads_finished.fetch_max(read, Ordering::AcqRel);
        Ok(())
    }

    /// Makes a new key when the newest is older than the rotation period, and deletes keys
    /// that can no longer have valid tokens. Safe to run from every process: at worst two
    /// keys are made at once, and both verify.
    pub async fn rotate_if_due(&self) -> Result<bool> {
        let now = now_ms();
        let newest = self.keys.read().await.first().map(|key| key.created_at_ms);
        let due = newest.is_none_or(|created| now - created >= self.rotation.as_millis() as i64);
        if due {
            self.accounts.add_signing_key(&generate_key(now)?).await?;
            tracing::info!("auth: new token-signing key");
        }
        // keys older than the newest retire; once the newest has signed for longer than a
        // token lives (plus a margin for clock skew), nothing the retired keys signed is valid
        if let Some(newest) = newest.filter(|_| !due) {
            let margin = (self.token_lifetime + Duration::from_secs(300)).as_millis() as i64;
            if now - newest > margin && self.keys.read().await.len() > 1 {
                self.accounts.delete_signing_keys_before(newest).await?;
            }
        }
        self.reload().await?;
        Ok(due)
    }

    /// Signs the claims with the newest key.
    pub async fn sign(&self, claims: &Claims) -> Result<String> {
        let keys = self.keys.read().await;
        let key = keys
            .first()
            .ok_or_else(|| Error::internal("no token-signing key"))?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.encoding)
            .map_err(|error| Error::internal("signing a token failed").with_source(error))
    }

    /// Checks signature (EdDSA only, known `kid`), issuer, audience and expiry.
    pub async fn verify(&self, token: &str) -> Result<Claims> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| unauthorized("the access token is malformed"))?;
        if header.alg != Algorithm::EdDSA {
            return Err(unauthorized("the access token's algorithm is not accepted"));
        }
        let kid = header
            .kid
            .ok_or_else(|| unauthorized("the access token has no key id"))?;
        // the reads begun before the key is looked for: one begun after is sure to see the
        // key if it is stored (it was, before the token was signed)
        let missed_after = self.reads_started.load(Ordering::Acquire);
        if !self.has_key(&kid).await {
            self.reload_for_unknown_key(missed_after).await?;
        }
        let keys = self.keys.read().await;
        let key = keys
            .iter()
            .find(|key| key.kid == kid)
            .ok_or_else(|| unauthorized("the access token was signed by an unknown key"))?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|error| match error.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    unauthorized("the access token has expired; refresh it or sign in again")
                }
                _ => unauthorized("the access token is not valid"),
            })
    }

    /// Another process may have made a key this one has not read yet (two processes starting
    /// on an empty ring both make one; a rotation elsewhere): read the ring again. Reads are
    /// at most one per [`RELOAD_INTERVAL`]; a caller inside the interval waits for the next
    /// read rather than being refused, and every caller that missed before a read began is
    /// answered by that read, so a flood of forged `kid`s costs one read a second.
    async fn reload_for_unknown_key(&self, missed_after: u64) -> Result<()> {
        let mut reloads = self.reloads.lock().await;
        if self.reads_finished.load(Ordering::Acquire) > missed_after {
            // a read that began after this caller's miss has finished
            return Ok(());
        }
        let since = reloads.last.elapsed();
        if since < RELOAD_INTERVAL {
            tokio::time::sleep(RELOAD_INTERVAL - since).await;
        } else {
            // misses polled together (a burst of requests) take their place before the read
            // begins, and are answered by it: without this, one that comes while the read is
            // under way reads again a second later (CI saw two reads for twenty misses)
            tokio::task::yield_now().await;
        }
        reloads.last = Instant::now();
        self.reload().await
    }

    /// How many times the ring has been read from the database (for tests and metrics).
    pub fn reads(&self) -> u64 {
        self.reads_started.load(Ordering::Acquire)
    }

    async fn has_key(&self, kid: &str) -> bool {
        self.keys.read().await.iter().any(|key| key.kid == kid)
    }

    /// The public keys as a JWK Set (RFC 7517), for other services to verify tokens.
    pub async fn jwks(&self) -> serde_json::Value {
        let keys: Vec<serde_json::Value> = self
            .keys
            .read()
            .await
            .iter()
            .map(|key| {
                serde_json::json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": key.public_x,
                    "kid": key.kid,
                    "alg": "EdDSA",
                    "use": "sig",
                })
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn token_lifetime(&self) -> Duration {
        self.token_lifetime
    }
}
