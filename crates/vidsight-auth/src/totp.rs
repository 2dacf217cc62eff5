//! TOTP (RFC 6238: HMAC-SHA1, 6 digits, 30 s steps, one step of clock skew either way) with
//! totp-rs; QR images of the `otpauth://` URI with qrcode (SVG).
use qrcode::render::svg;
use qrcode::QrCode;
use totp_rs::{Algorithm, Builder, Secret, Totp};
use vidsight_domain::{Error, ErrorCode, Result};

/// A new random secret (160 bits, as RFC 4226 recommends), base32.
pub fn new_secret() -> String {
    Secret::from(crate::secrets::random_bytes::<20>().to_vec()).to_base32()
}

fn totp(secret_base32: &str, account: &str, issuer: &str) -> Result<Totp> {
    let secret = Secret::try_from_base32(secret_base32)
        .map_err(|_| Error::internal("stored TOTP secret is not base32"))?;
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(secret)
        .with_account_name(account.replace(':', ""))
        .with_issuer(Some(issuer.replace(':', "")))
        .build()
        .map_err(|error| Error::internal(format!("TOTP set-up failed: {error:?}")))
}

/// The `otpauth://totp/…` URI authenticator apps import.
pub fn otpauth_uri(secret_base32: &str, account: &str, issuer: &str) -> Result<String> {
    totp(secret_base32, account, issuer)?
        .to_url()
        .map_err(|error| Error::internal(format!("otpauth URI failed: {error:?}")))
}

/// The URI as a QR code, an SVG document.
pub fn qr_svg(uri: &str) -> Result<String> {
    let code = QrCode::new(uri.as_bytes())
        .map_err(|error| Error::new(ErrorCode::Internal, format!("QR encoding failed: {error}")))?;
    Ok(code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

/// The time step the code matches at `unix_seconds` (±1 step), if any.
pub fn verify(secret_base32: &str, code: &str, unix_seconds: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    totp(secret_base32, "x", "vidsight")
        .ok()?
        .check(code, unix_seconds)
}

/// The code at a time (for tests and tools).
pub fn code_at(secret_base32: &str, unix_seconds: u64) -> Result<String> {
    Ok(totp(secret_base32, "x", "vidsight")?
        .generate(unix_seconds)
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 rows: the secret is ASCII "12345678901234567890".
    #[test]
    fn rfc_6238_test_vectors() {
        let secret = Secret::from(b"12345678901234567890".to_vec());
        let totp = Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(8)
            .with_skew(0)
            .with_step_duration(30)
            .with_secret(secret.clone())
            .build()
            .unwrap();
        for (time, expected) in [
            (59u64, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
            (20000000000, "65353130"),
        ] {
            assert_eq!(totp.generate(time).to_string(), expected, "T = {time}");
        }
        // our 6-digit codes are the last 6 digits of the same values
        let base32 = secret.to_base32();
        assert_eq!(code_at(&base32, 59).unwrap(), "287082");
        assert_eq!(code_at(&base32, 1111111109).unwrap(), "081804");
        assert_eq!(verify(&base32, "081804", 1111111109), Some(1111111109 / 30));
        assert_eq!(
            verify(&base32, "081804", 1111111109 + 30),
            Some(1111111109 / 30),
            "one step late"
        );
        assert_eq!(verify(&base32, "081804", 1111111109 + 90), None, "too late");
        assert_eq!(verify(&base32, "08180", 1111111109), None);
        assert_eq!(verify(&base32, "abcdef", 1111111109), None);
    }

    #[test]
    fn uris_and_qr_codes() {
        let secret = new_secret();
        assert_eq!(secret.len(), 32);
        let uri = otpauth_uri(&secret, "ann@example.com", "vidsight").unwrap();
        assert!(
            uri.starts_with("otpauth://totp/vidsight:ann%40example.com?"),
            "{uri}"
        );
        assert!(uri.contains(&format!("secret={secret}")), "{uri}");
        assert!(uri.contains("issuer=vidsight"), "{uri}");
        let svg = qr_svg(&uri).unwrap();
        assert!(
            svg.starts_with("<?xml") && svg.contains("<svg"),
            "{}",
            &svg[..80]
        );
    }
}
