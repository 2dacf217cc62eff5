//! `POST /api/v1/videos`: a streaming multipart upload.
//!
//! The file field is streamed to a temporary file (never held in memory) while its SHA-256
//! and size are computed; past the size limit the upload stops with 413. The spooled file is
//! then validated with ffprobe and a one-frame decode, copied into object storage, and only
//! then is the video recorded — together with its first analysis and the job that runs it,
//! in one transaction. Any failure removes the temporary file and any stored object, so a
//! refused upload leaves nothing behind.
use crate::auth::Auth;
use crate::{ApiError, ApiResult, AppState, ErrorBody};
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use sha2::{Digest, Sha256};
use std::path::Path;
use tokio::io::AsyncWriteExt;
use vidsight_blob::keys;
use vidsight_cache::eventlog::announce;
use vidsight_domain::events::kinds;
use vidsight_domain::UserEvent;
use vidsight_domain::{ErrorCode, MediaInfo, Video, VideoId};
use vidsight_store::NewVideo;
use vidsight_telemetry::names;

/// The upload form: one `file` field.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The video file.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// Fields other than `file` are ignored; this is as much of them as is read.
const OTHER_FIELD_LIMIT: usize = 64 * 1024;

/// Room for multipart boundaries and headers on top of the file itself.
const MULTIPART_OVERHEAD: u64 = 64 * 1024;

/// Uploads a video. It is validated, stored, and its first analysis queued.
#[utoipa::path(post, path = "/api/v1/videos", tag = "videos",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, body = Video, description = "Stored; the first analysis is queued.", headers(("Location" = String))),
        (status = 400, body = ErrorBody, description = "`invalid-multipart`, `missing-file`, `invalid-filename`"),
        (status = 403, body = ErrorBody, description = "`quota_exceeded`: storage or monthly analysis minutes"),
        (status = 413, body = ErrorBody, description = "`payload-too-large`"),
        (status = 415, body = ErrorBody, description = "`unsupported-media-type`: not a video format"),
        (status = 422, body = ErrorBody, description = "`empty-file`, `not-a-video`, `truncated-media`, `undecodable-media`"),
        (status = 503, body = ErrorBody, description = "Storage or database unavailable; retry.")
    ))]
pub async fn upload_video(
    State(state): State<AppState>,
    Auth(principal): Auth,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult<(StatusCode, [(header::HeaderName, String); 1], Json<Video>)> {
    let limit = state.settings.max_upload_bytes;
    let declared_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    let declared_too_large =
        declared_length.is_some_and(|length| length > limit + MULTIPART_OVERHEAD);
    if declared_length.is_some_and(|length| length > limit + MULTIPART_OVERHEAD + DRAIN_LIMIT) {
        // far too large to read through: answer now (clients sending `Expect: 100-continue`
        // get this cleanly; others see the connection close)
        return Err(too_large(limit));
    }
    let mut multipart = multipart.map_err(|rejection| {
        ApiError::new(
            ErrorCode::InvalidMultipart,
            format!(
                "{}; send multipart/form-data with a `file` field",
                rejection.body_text()
            ),
        )
    })?;
    if declared_too_large {
        drain(&mut multipart).await;
        return Err(too_large(limit));
    }

    loop {
        let field = multipart.next_field().await.map_err(multipart_error)?;
        let Some(mut field) = field else {
            return Err(ApiError::new(
                ErrorCode::MissingFile,
                "no `file` field in the form; send the video as `file`",
            ));
        };
        if field.name() != Some("file") {
            // other fields are read and ignored, up to a small bound
            let mut ignored = 0usize;
            while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                ignored += chunk.len();
                if ignored > OTHER_FIELD_LIMIT {
                    return Err(ApiError::new(
                        ErrorCode::InvalidMultipart,
                        "a form field other than `file` is larger than 64 KiB",
                    ));
                }
            }
            continue;
        }
        let filename = sanitize_filename(field.file_name().unwrap_or("upload"))?;
        let declared_type = field.content_type().map(str::to_owned);
        if let Some(declared) = &declared_type {
            if !acceptable_declared_type(declared) {
                return Err(ApiError::new(
                    ErrorCode::UnsupportedMediaType,
                    format!("`{declared}` is not a video type; upload a video file (MP4, MOV, MKV, WebM, …)"),
                ));
            }
        }

        // spool to a temporary file, hashing and counting as bytes arrive
        tokio::fs::create_dir_all(&state.settings.tmp_dir)
            .await
            .map_err(|error| {
                vidsight_domain::Error::internal("cannot create the upload directory")
                    .with_source(error)
            })?;
        let spool = tempfile::Builder::new()
            .prefix("upload-")
            .tempfile_in(&state.settings.tmp_dir)
            .map_err(|error| {
                vidsight_domain::Error::internal("cannot create a temporary file")
                    .with_source(error)
            })?;
        let mut file = tokio::fs::File::from_std(spool.reopen().map_err(|error| {
            vidsight_domain::Error::internal("cannot open the temporary file").with_source(error)
        })?);
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
            size += chunk.len() as u64;
            if size > limit {
                drop(field);
                drain(&mut multipart).await;
                return Err(too_large(limit));
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(|error| {
                vidsight_domain::Error::internal("writing the upload failed").with_source(error)
            })?;
        }
        file.flush().await.map_err(|error| {
            vidsight_domain::Error::internal("writing the upload failed").with_source(error)
        })?;
        drop(file);
        if size == 0 {
            return Err(ApiError::new(
                ErrorCode::EmptyFile,
                "the file is empty (0 bytes)",
            ));
        }

        let video = store_spooled(
            &state,
            principal.user_id,
            spool.path(),
            filename,
            size,
            hex::encode(hasher.finalize()),
        )
        .await?;
        let location = format!("/api/v1/videos/{}", video.id);
        return Ok((
            StatusCode::CREATED,
            [(header::LOCATION, location)],
            Json(video),
        ));
    }
}

/// The end of every upload path (multipart and resumable): validate the spooled file,
/// check the owner's quota, move the file into object storage, record the video with its
/// first analysis, announce it. Nothing of a refused file stays.
pub(crate) async fn store_spooled(
    state: &AppState,
    owner: vidsight_domain::UserId,
    spool: &Path,
    filename: String,
    size: u64,
    sha256: String,
) -> ApiResult<Video> {
    let media = state.tools.validate_upload(spool).await?;
    state
        .auth
        .check_quota(owner, size as i64, media.duration)
        .await?;
    let content_type = content_type_for(&media, &filename);
    let video_id = VideoId::new();
    let key = keys::original(video_id);
    if let Err(error) = state.blobs.adopt_file(&key, spool).await {
        // a part may have been written: nothing of a refused upload stays
        let _ = state
            .blobs
            .delete_prefix(&keys::video_prefix(video_id))
            .await;
        return Err(error.into());
    }
    let new_video = NewVideo {
        id: video_id,
        owner_id: Some(owner),
        filename,
        content_type: content_type.clone(),
        size_bytes: size as i64,
        sha256,
        media,
    };
    let created = state
        .store
        .create_video(new_video, state.settings.max_attempts)
        .await;
    let (video, _analysis) = match created {
        Ok(created) => created,
        Err(error) => {
            // no row: the object must not outlive the request
            let _ = state
                .blobs
                .delete_prefix(&keys::video_prefix(video_id))
                .await;
            return Err(error.into());
        }
    };
    metrics::counter!(names::UPLOAD_BYTES).increment(size);
    for kind in [kinds::VIDEO_UPLOADED, kinds::ANALYSIS_QUEUED] {
        announce(
            &*state.event_log,
            video.owner_id,
            &UserEvent::new(kind, video.id, video.latest_analysis_id),
        )
        .await;
    }
    tracing::info!(video = %video.id, bytes = size, content_type, "video uploaded");
    Ok(video)
}

/// How much of a refused body is read and thrown away so that the client, still sending,
/// receives the error instead of a broken connection.
const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;

/// Reads and discards the rest of a refused upload, up to [`DRAIN_LIMIT`] bytes and 30 s.
async fn drain(multipart: &mut Multipart) {
    let work = async {
        let mut discarded = 0u64;
        while let Ok(Some(mut field)) = multipart.next_field().await {
            while let Ok(Some(chunk)) = field.chunk().await {
                discarded += chunk.len() as u64;
                if discarded > DRAIN_LIMIT {
                    return;
                }
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(30), work).await;
}

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("the file is larger than the {limit}-byte limit (upload.max_bytes)"),
    )
}

fn multipart_error(error: axum::extract::multipart::MultipartError) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(ErrorCode::PayloadTooLarge, error.body_text());
    }
    ApiError::new(
        ErrorCode::InvalidMultipart,
        format!("the multipart body is malformed: {}", error.body_text()),
    )
}

/// Keeps a client's file name only when it is a plain name: no directories, no `..`, no
/// control characters. Anything else is refused rather than silently rewritten.
pub fn sanitize_filename(name: &str) -> ApiResult<String> {
    let trimmed = name.trim();
    let refuse = |why: &str| {
        ApiError::new(
            ErrorCode::InvalidFilename,
            format!(
                "the file name `{}` is not allowed: {why}",
                trimmed.escape_debug()
            ),
        )
    };
    if trimmed.is_empty() {
        return Err(refuse("it is empty"));
    }
    if trimmed.contains('/') || trimmed.contains('\\') {
        return Err(refuse("it contains a directory separator"));
    }
    if trimmed == "." || trimmed == ".." || trimmed.starts_with("..") {
        return Err(refuse("it names a directory"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(refuse("it contains control characters"));
    }
    if trimmed.len() > 255 {
        return Err(refuse("it is longer than 255 bytes"));
    }
    Ok(trimmed.to_owned())
}

fn acceptable_declared_type(declared: &str) -> bool {
    let essence = declared
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence.is_empty()
        || essence.starts_with("video/")
        || matches!(
            essence.as_str(),
            "application/octet-stream"
                | "application/mp4"
                | "application/x-matroska"
                | "application/mxf"
                | "binary/octet-stream"
        )
}

/// The stored content type, from what ffprobe found (never from what the client claimed).
fn content_type_for(media: &MediaInfo, filename: &str) -> String {
    let extension = Path::new(filename)
        .extension()
        .and_then(|extension| extension.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let formats: Vec<&str> = media.container.split(',').collect();
    let has = |name: &str| formats.contains(&name);
    let mime = if has("mov") && extension == "mov" {
        "video/quicktime"
    } else if has("mp4") || has("mov") {
        "video/mp4"
    } else if has("webm") && (extension == "webm" || !has("matroska")) {
        "video/webm"
    } else if has("matroska") {
        "video/x-matroska"
    } else if has("avi") {
        "video/x-msvideo"
    } else if has("mpegts") {
        "video/mp2t"
    } else if has("mpeg") || has("mpegvideo") {
        "video/mpeg"
    } else if has("flv") {
        "video/x-flv"
    } else if has("ogg") {
        "video/ogg"
    } else if has("asf") {
        "video/x-ms-asf"
    } else if has("gif") {
        "image/gif"
    } else {
        "application/octet-stream"
    };
    mime.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_with_paths_or_controls_are_refused() {
        assert_eq!(sanitize_filename("clip.mp4").unwrap(), "clip.mp4");
        assert_eq!(
            sanitize_filename(" my clip (1).mp4 ").unwrap(),
            "my clip (1).mp4"
        );
        for bad in [
            "../../etc/passwd",
            "..",
            "a/b.mp4",
            "C:\\x\\y.mp4",
            "bad\u{0}.mp4",
            "",
            "..mp4",
        ] {
            let error = sanitize_filename(bad).expect_err(bad);
            assert_eq!(error.0.code, ErrorCode::InvalidFilename, "{bad}");
        }
    }

    #[test]
    fn declared_types() {
        assert!(acceptable_declared_type("video/mp4"));
        assert!(acceptable_declared_type("application/octet-stream"));
        assert!(!acceptable_declared_type("text/plain; charset=utf-8"));
        assert!(!acceptable_declared_type("image/png"));
    }
}
