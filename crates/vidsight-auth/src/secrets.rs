//! Random secrets, hashing of stored secrets, constant-time comparison.
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// `N` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    bytes
}

/// 32 random bytes, base64url: refresh tokens, API key secrets, CSRF tokens.
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// Lower-case hex of `N` random bytes.
pub fn random_hex<const N: usize>() -> String {
    hex::encode(random_bytes::<N>())
}

/// Hex SHA-256: how refresh tokens, API keys and recovery codes are stored. They carry 128+
/// bits of randomness, so a fast hash is enough (no password stretching needed).
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

const RECOVERY_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// A one-time recovery code, `xxxxx-xxxxx` (about 49 bits; spent once, and sign-in is
/// rate-limited).
pub fn recovery_code() -> String {
    let bytes = random_bytes::<10>();
    let mut code = String::with_capacity(11);
    for (index, byte) in bytes.iter().enumerate() {
        if index == 5 {
            code.push('-');
        }
        code.push(RECOVERY_ALPHABET[*byte as usize % RECOVERY_ALPHABET.len()] as char);
    }
    code
}

/// The form recovery codes are hashed in: lower case, without separators or spaces.
pub fn normalize_recovery_code(code: &str) -> String {
    code.chars()
        .filter(|character| character.is_ascii_alphanumeric())
        .map(|character| character.to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_distinct_and_normalise() {
        let codes: std::collections::HashSet<String> = (0..100).map(|_| recovery_code()).collect();
        assert_eq!(codes.len(), 100);
        let code = codes.iter().next().unwrap();
        assert_eq!(code.len(), 11);
        assert_eq!(
            normalize_recovery_code(&code.to_uppercase()),
            normalize_recovery_code(code)
        );
        assert_eq!(normalize_recovery_code(" AB-cd "), "abcd");
    }

    #[test]
    fn comparisons() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert_ne!(random_token(), random_token());
    }
}
