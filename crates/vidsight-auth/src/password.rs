//! Password hashing (argon2id, PHC strings), the password policy, email normalisation.
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::Arc;
use vidsight_domain::{Error, ErrorCode, Result};

/// Hashes and verifies passwords on the blocking pool (each hash takes tens of ms).
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    /// A hash of a random password, verified against when an email is unknown so both
    /// outcomes of a sign-in take as long.
    decoy: Arc<tokio::sync::OnceCell<String>>,
}

impl PasswordHasher {
    pub fn new(memory_kib: u32, iterations: u32, parallelism: u32) -> Result<Self> {
        let params = Params::new(memory_kib, iterations, parallelism, None).map_err(|error| {
            Error::new(
                ErrorCode::Internal,
                format!("invalid argon2 parameters: {error}"),
            )
        })?;
        Ok(Self {
            params,
            decoy: Arc::default(),
        })
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// Hashes synchronously (CLI, benchmarks).
    pub fn hash_blocking(&self, password: &str) -> Result<String> {
        self.argon2()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|error| Error::internal("password hashing failed").with_source(error))
    }

    pub async fn hash(&self, password: &str) -> Result<String> {
        let hasher = self.clone();
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || hasher.hash_blocking(&password))
            .await
            .map_err(|error| Error::internal("password hashing failed").with_source(error))?
    }

    /// Whether `password` matches `hash` (with the parameters stored in the hash).
    pub fn verify_blocking(hash: &str, password: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(hash) else {
            return false;
        };
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    }

    pub async fn verify(&self, hash: &str, password: &str) -> bool {
        let hash = hash.to_owned();
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || Self::verify_blocking(&hash, &password))
            .await
            .unwrap_or(false)
    }

    /// Spends the time a verification takes, for an unknown account.
    pub async fn verify_decoy(&self, password: &str) {
        let hasher = self.clone();
        let decoy = self
            .decoy
            .get_or_init(|| async move {
                hasher
                    .hash(&crate::secrets::random_token())
                    .await
                    .unwrap_or_default()
            })
            .await
            .clone();
        let _ = self.verify(&decoy, password).await;
    }
}

pub const MIN_PASSWORD_CHARS: usize = 10;
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// At least 10 characters, at most 1 KiB, not the email, not one repeated character.
pub fn check_password_policy(password: &str, email: &str) -> Result<()> {
    let invalid = |message: &str| Err(Error::new(ErrorCode::InvalidInput, message));
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return invalid("the password must have at least 10 characters");
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return invalid("the password must be at most 1024 bytes");
    }
    if password.trim().to_lowercase() == email.trim().to_lowercase() {
        return invalid("the password must not be the email address");
    }
    let mut characters = password.chars();
    let first = characters.next();
    if characters.all(|character| Some(character) == first) {
        return invalid("the password must not be one character repeated");
    }
    Ok(())
}

/// Trims and lower-cases an email and checks its shape (`local@domain.tld`, ≤ 254 bytes).
pub fn normalize_email(email: &str) -> Result<String> {
    let email = email.trim().to_lowercase();
    let bad = || {
        Error::new(
            ErrorCode::InvalidInput,
            "the email address is not valid (expected name@example.com)",
        )
    };
    if email.len() > 254
        || email
            .chars()
            .any(|character| character.is_whitespace() || character.is_control())
    {
        return Err(bad());
    }
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    if local.is_empty()
        || domain.contains('@')
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
    {
        return Err(bad());
    }
    Ok(email)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_differ() {
        let hasher = PasswordHasher::new(1024, 1, 1).unwrap();
        let hash = hasher.hash("correct horse battery").await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{hash}");
        assert!(hasher.verify(&hash, "correct horse battery").await);
        assert!(!hasher.verify(&hash, "correct horse batterz").await);
        assert!(!hasher.verify("not a hash", "x").await);
        assert_ne!(
            hash,
            hasher.hash("correct horse battery").await.unwrap(),
            "salted"
        );
        hasher.verify_decoy("anything").await;
    }

    #[test]
    fn policy_and_emails() {
        assert!(check_password_policy("short", "a@b.co").is_err());
        assert!(check_password_policy("aaaaaaaaaaaa", "a@b.co").is_err());
        assert!(check_password_policy("someone@example.com", "Someone@Example.com").is_err());
        assert!(check_password_policy(&"x".repeat(2000), "a@b.co").is_err());
        assert!(check_password_policy("a long passphrase", "a@b.co").is_ok());
        assert_eq!(
            normalize_email("  Ann@Example.COM ").unwrap(),
            "ann@example.com"
        );
        for bad in [
            "",
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "a b@example.com",
            "a@b@c.com",
            "ann@.com",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }
}
