//! Identity and access, independent of HTTP:
//! - [`password`]: argon2id hashing, the password policy, email normalisation;
//! - [`tokens`]: EdDSA-signed access tokens (JWT with `kid`) from a key ring kept in the
//!   database and rotated on a schedule, plus the JWKS document;
//! - [`totp`]: RFC 6238 codes, `otpauth://` URIs and QR images (totp-rs, qrcode);
//! - [`service`]: what the API calls: registration, sign-in with lockout and MFA, rotating
//!   refresh tokens with reuse detection, API keys, quotas and the audit trail.

pub mod password;
pub mod secrets;
pub mod service;
pub mod tokens;
pub mod totp;

pub use service::{
    AuthService, AuthSettings, Credential, IssuedTokens, MfaEnrollment, Principal, RequestContext,
    UsageReport,
};
