//! Domain types shared by every vidsight crate: identifiers, videos, analyses, jobs, the
//! insights document and the one error type with stable codes.
//!
//! Nothing here does I/O; backends and the API depend on this crate, never the reverse.

pub mod account;
pub mod ai;
mod error;
pub mod events;
mod ids;
pub mod insights;
pub mod media;
mod model;

pub use account::*;
pub use ai::{AnalysisOptions, Feature, Source};
pub use error::{Error, ErrorCode, Result};
pub use events::UserEvent;
pub use ids::{AnalysisId, ApiKeyId, AuditId, JobId, UserId, VideoId};
pub use insights::Insights;
pub use media::MediaInfo;
pub use model::*;
