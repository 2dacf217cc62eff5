//! Resumable uploads: the tus 1.0 protocol (<https://tus.io/protocols/resumable-upload>) with
//! the creation, expiration and termination extensions, at `/api/v1/uploads`.
//!
//! Each chunk (`PATCH`) is spooled to a temporary file and stored as an object
//! `uploads/<id>/<offset>-<random>`; the offset advances in the database with a
//! compare-and-set, so any API instance can take the next chunk and two clients cannot both
//! write the same range. A chunk cut short (a dropped connection) keeps what arrived, so the
//! client resumes from there (`HEAD` says where). When the last byte arrives, the parts are
//! joined into one file (hashed on the way) and take the normal upload path: validation,
//! quota, storage, the video and its first analysis. `X-Video-Id` then names the video.
//! Unfinished uploads expire (`upload.resumable_expiry_seconds`) and are swept.
use crate::auth::Auth;
use crate::upload::{sanitize_filename, store_spooled};
use crate::{no_content, ApiError, ApiResult, AppState, ErrorBody};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use vidsight_domain::{Error, ErrorCode};
use vidsight_store::ResumableUpload;

const TUS_VERSION: &str = "1.0.0";

fn prefix(id: &str) -> String {
    format!("uploads/{id}/")
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}

fn http_date(ms: i64) -> String {
    let time = time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time.format(&format).unwrap_or_default()
}

fn tus_headers(response: &mut Response) {
    response
        .headers_mut()
        .insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
}

/// Every tus request but OPTIONS names the protocol version.
fn check_version(headers: &HeaderMap) -> ApiResult<()> {
    match headers
        .get("tus-resumable")
        .and_then(|value| value.to_str().ok())
    {
        Some(TUS_VERSION) => Ok(()),
        _ => Err(ApiError::new(
            ErrorCode::BadRequest,
            "send `Tus-Resumable: 1.0.0` (this server speaks tus 1.0.0)",
        )),
    }
}

fn header_number(headers: &HeaderMap, name: &str) -> Option<i64> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.trim().parse::<i64>().ok())
        .filter(|value| *value >= 0)
}

/// `Upload-Metadata`: comma-separated `key base64(value)` pairs.
fn metadata_value(metadata: &str, key: &str) -> Option<String> {
    metadata.split(',').find_map(|pair| {
        let mut parts = pair.trim().splitn(2, ' ');
        if parts.next()? != key {
            return None;
        }
        let value = parts.next().unwrap_or("");
        base64::engine::general_purpose::STANDARD
            .decode(value.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
    })
}

/// The upload, if it is the caller's and not expired; otherwise `not-found`.
async fn owned_upload(
    state: &AppState,
    principal: &vidsight_auth::Principal,
    id: &str,
) -> ApiResult<ResumableUpload> {
    let missing = || {
        ApiError::new(
            ErrorCode::NotFound,
            "no such upload (or it expired); start a new one",
        )
    };
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(missing());
    }
    let upload = state.store.get_upload(id).await?.ok_or_else(missing)?;
    if upload.owner_id != principal.user_id && !principal.is_admin() {
        return Err(missing());
    }
    if upload.expires_at_ms < now_ms() {
        return Err(missing());
    }
    Ok(upload)
}

/// What the server supports (tus discovery).
#[utoipa::path(options, path = "/api/v1/uploads", tag = "videos", security(()),
    responses((status = 204, description = "`Tus-Version`, `Tus-Extension`, `Tus-Max-Size`.")))]
pub async fn options(State(state): State<AppState>) -> Response {
    let mut response = no_content();
    tus_headers(&mut response);
    let headers = response.headers_mut();
    headers.insert("tus-version", HeaderValue::from_static(TUS_VERSION));
    headers.insert(
        "tus-extension",
        HeaderValue::from_static("creation,expiration,termination"),
    );
    headers.insert(
        "tus-max-size",
        HeaderValue::from(state.settings.max_upload_bytes),
    );
    response
}

/// Starts a resumable upload (tus `creation`): `Upload-Length` (bytes) and `Upload-Metadata`
/// (`filename` base64). The answer's `Location` is where to `PATCH` the bytes.
#[utoipa::path(post, path = "/api/v1/uploads", tag = "videos",
    params(("Upload-Length" = i64, Header, description = "The file's size in bytes"),
           ("Upload-Metadata" = Option<String>, Header, description = "e.g. `filename Y2xpcC5tcDQ=`"),
           ("Tus-Resumable" = String, Header, description = "`1.0.0`")),
    responses(
        (status = 201, description = "Created.", headers(("Location" = String), ("Upload-Expires" = String))),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody, description = "`quota_exceeded`"),
        (status = 413, body = ErrorBody, description = "`payload-too-large`")
    ))]
pub async fn create(
    State(state): State<AppState>,
    Auth(principal): Auth,
    headers: HeaderMap,
) -> ApiResult<Response> {
    check_version(&headers)?;
    let length = header_number(&headers, "upload-length").ok_or_else(|| {
        ApiError::new(
            ErrorCode::BadRequest,
            "send `Upload-Length` (deferred lengths are not supported)",
        )
    })?;
    if length == 0 {
        return Err(ApiError::new(
            ErrorCode::EmptyFile,
            "the file is empty (0 bytes)",
        ));
    }
    if length as u64 > state.settings.max_upload_bytes {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "the file is larger than the {}-byte limit",
                state.settings.max_upload_bytes
            ),
        ));
    }
    let metadata = headers
        .get("upload-metadata")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(4096)
        .collect::<String>();
    let filename = sanitize_filename(
        &metadata_value(&metadata, "filename")
            .or_else(|| metadata_value(&metadata, "name"))
            .unwrap_or_else(|| "upload".to_owned()),
    )?;
    // refuse early what could never be stored
    state
        .auth
        .check_quota(principal.user_id, length, 0.0)
        .await?;
    let now = now_ms();
    let upload = ResumableUpload {
        id: uuid::Uuid::now_v7().to_string(),
        owner_id: principal.user_id,
        length,
        offset: 0,
        filename,
        metadata,
        video_id: None,
        created_at_ms: now,
        expires_at_ms: now + state.settings.resumable_expiry.as_millis() as i64,
    };
    state.store.create_upload(&upload).await?;
    let mut response = StatusCode::CREATED.into_response();
    tus_headers(&mut response);
    let headers = response.headers_mut();
    headers.insert(
        header::LOCATION,
        HeaderValue::from_str(&format!("/api/v1/uploads/{}", upload.id)).expect("ascii"),
    );
    headers.insert(
        "upload-expires",
        HeaderValue::from_str(&http_date(upload.expires_at_ms)).expect("ascii"),
    );
    Ok(response)
}

fn offset_response(upload: &ResumableUpload, status: StatusCode) -> Response {
    let mut response = status.into_response();
    tus_headers(&mut response);
    let headers = response.headers_mut();
    headers.insert("upload-offset", HeaderValue::from(upload.offset));
    headers.insert("upload-length", HeaderValue::from(upload.length));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(expires) = HeaderValue::from_str(&http_date(upload.expires_at_ms)) {
        headers.insert("upload-expires", expires);
    }
    if !upload.metadata.is_empty() {
        if let Ok(metadata) = HeaderValue::from_str(&upload.metadata) {
            headers.insert("upload-metadata", metadata);
        }
    }
    if let Some(video) = upload.video_id {
        headers.insert(
            "x-video-id",
            HeaderValue::from_str(&video.to_string()).expect("uuid"),
        );
    }
    response
}

/// Where the upload stands: `Upload-Offset` is where to continue (`X-Video-Id` once it
/// became a video).
#[utoipa::path(head, path = "/api/v1/uploads/{id}", tag = "videos",
    params(("id" = String, Path, description = "Upload id"), ("Tus-Resumable" = String, Header, description = "`1.0.0`")),
    responses((status = 200, description = "`Upload-Offset`, `Upload-Length`, `Upload-Metadata`, `X-Video-Id`."),
        (status = 404, description = "Unknown or expired.")))]
pub async fn head(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    check_version(&headers)?;
    let upload = owned_upload(&state, &principal, &id).await?;
    Ok(offset_response(&upload, StatusCode::OK))
}

/// Sends bytes from `Upload-Offset` (`Content-Type: application/offset+octet-stream`). A
/// chunk cut short keeps what arrived. The last chunk turns the upload into a video
/// (`X-Video-Id`), or answers why it cannot be one (415/422, and the upload is removed).
#[utoipa::path(patch, path = "/api/v1/uploads/{id}", tag = "videos",
    params(("id" = String, Path, description = "Upload id"),
           ("Upload-Offset" = i64, Header, description = "Where these bytes start"),
           ("Tus-Resumable" = String, Header, description = "`1.0.0`")),
    request_body(content = Vec<u8>, content_type = "application/offset+octet-stream"),
    responses(
        (status = 204, description = "Stored; `Upload-Offset` is the new offset (`X-Video-Id` when complete)."),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "`bad-request`: the offset is not where the upload is"),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)
    ))]
pub async fn patch(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    check_version(&headers)?;
    // whose it is first: another account learns nothing from the other checks
    let upload = owned_upload(&state, &principal, &id).await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    if content_type != "application/offset+octet-stream" {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the bytes as `Content-Type: application/offset+octet-stream`",
        ));
    }
    let offset = header_number(&headers, "upload-offset")
        .ok_or_else(|| ApiError::new(ErrorCode::BadRequest, "send `Upload-Offset`"))?;
    if offset != upload.offset || upload.video_id.is_some() {
        return Ok(conflict(format!(
            "the upload is at offset {}; HEAD it and continue from there",
            upload.offset
        )));
    }
    let remaining = (upload.length - upload.offset) as u64;

    // spool what arrives (up to the end of the file), keeping it if the connection drops
    tokio::fs::create_dir_all(&state.settings.tmp_dir)
        .await
        .map_err(|error| {
            Error::internal("cannot create the upload directory").with_source(error)
        })?;
    let chunk_file = tempfile::Builder::new()
        .prefix("tus-")
        .tempfile_in(&state.settings.tmp_dir)
        .map_err(|error| Error::internal("cannot create a temporary file").with_source(error))?;
    let mut file =
        tokio::fs::File::from_std(chunk_file.reopen().map_err(|error| {
            Error::internal("cannot open the temporary file").with_source(error)
        })?);
    let mut received: u64 = 0;
    let mut too_long = false;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            break; // the client went away: keep what arrived
        };
        let room = remaining - received;
        if chunk.len() as u64 > room {
            too_long = true;
            file.write_all(&chunk[..room as usize])
                .await
                .map_err(write_error)?;
            received += room;
            break;
        }
        file.write_all(&chunk).await.map_err(write_error)?;
        received += chunk.len() as u64;
    }
    file.flush().await.map_err(write_error)?;
    drop(file);
    if too_long {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            "more bytes than the Upload-Length announced; nothing was stored",
        ));
    }
    let mut upload = upload;
    if received > 0 {
        let part = format!(
            "{}{:020}-{}",
            prefix(&id),
            offset,
            uuid::Uuid::new_v4().simple()
        );
        state.blobs.adopt_file(&part, chunk_file.path()).await?;
        let new_offset = offset + received as i64;
        if !state.store.advance_upload(&id, offset, new_offset).await? {
            let _ = state.blobs.delete_prefix(&part).await;
            return Ok(conflict(
                "another request moved the upload meanwhile; HEAD it and continue from there"
                    .into(),
            ));
        }
        upload.offset = new_offset;
    }
    if upload.offset == upload.length {
        let video = complete(&state, &upload).await?;
        upload.video_id = Some(video);
    }
    Ok(offset_response(&upload, StatusCode::NO_CONTENT))
}

/// 409: the offset is not where the upload is (tus says 409 Conflict).
fn conflict(message: String) -> Response {
    let body = crate::ErrorBody {
        error: crate::ErrorDetail {
            code: ErrorCode::UploadOffsetMismatch,
            message,
        },
    };
    let mut response = (StatusCode::CONFLICT, axum::Json(body)).into_response();
    tus_headers(&mut response);
    response
}

fn write_error(error: std::io::Error) -> ApiError {
    Error::internal("writing the upload failed")
        .with_source(error)
        .into()
}

/// Joins the parts into one file and stores it as a video; on a refusal, the upload goes.
async fn complete(
    state: &AppState,
    upload: &ResumableUpload,
) -> ApiResult<vidsight_domain::VideoId> {
    let spool = tempfile::Builder::new()
        .prefix("upload-")
        .tempfile_in(&state.settings.tmp_dir)
        .map_err(|error| Error::internal("cannot create a temporary file").with_source(error))?;
    let joined = join_parts(state, upload, spool.path()).await;
    let result = match joined {
        Ok(sha256) => {
            store_spooled(
                state,
                upload.owner_id,
                spool.path(),
                upload.filename.clone(),
                upload.length as u64,
                sha256,
            )
            .await
        }
        Err(error) => Err(error),
    };
    match result {
        Ok(video) => {
            state.store.finish_upload(&upload.id, video.id).await?;
            let _ = state.blobs.delete_prefix(&prefix(&upload.id)).await;
            Ok(video.id)
        }
        Err(error) => {
            if error.0.code.is_client_error() {
                // a file that can never be a video: nothing of it stays
                let _ = state.blobs.delete_prefix(&prefix(&upload.id)).await;
                let _ = state.store.delete_upload(&upload.id).await;
            }
            Err(error)
        }
    }
}

/// Writes the parts in offset order to `path`; returns the SHA-256. Parts that do not
/// continue where the previous one ended (left by a crash between storing a part and
/// recording it) are skipped.
async fn join_parts(
    state: &AppState,
    upload: &ResumableUpload,
    path: &std::path::Path,
) -> ApiResult<String> {
    let mut parts = state.blobs.list(&prefix(&upload.id)).await?;
    parts.sort();
    let mut file = tokio::fs::File::create(path).await.map_err(write_error)?;
    let mut hasher = Sha256::new();
    let mut position: i64 = 0;
    for part in parts {
        let start: i64 = part
            .rsplit('/')
            .next()
            .and_then(|name| name.split('-').next())
            .and_then(|start| start.parse().ok())
            .unwrap_or(-1);
        if start != position {
            continue;
        }
        // streamed: a part may be the whole file
        let Some(read) = state.blobs.read(&part, None).await? else {
            continue;
        };
        let mut stream = read.stream;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(write_error)?;
            position += chunk.len() as i64;
        }
    }
    file.flush().await.map_err(write_error)?;
    if position != upload.length {
        return Err(ApiError::new(
            ErrorCode::Internal,
            format!(
                "the stored parts hold {position} of {} bytes",
                upload.length
            ),
        ));
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Abandons the upload (tus `termination`): what it received is deleted.
#[utoipa::path(delete, path = "/api/v1/uploads/{id}", tag = "videos",
    params(("id" = String, Path, description = "Upload id"), ("Tus-Resumable" = String, Header, description = "`1.0.0`")),
    responses((status = 204, description = "Deleted."), (status = 404, body = ErrorBody)))]
pub async fn terminate(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    check_version(&headers)?;
    let upload = owned_upload(&state, &principal, &id).await?;
    state.blobs.delete_prefix(&prefix(&upload.id)).await?;
    state.store.delete_upload(&upload.id).await?;
    let mut response = no_content();
    tus_headers(&mut response);
    Ok(response)
}

/// Deletes expired uploads and what they received. Returns how many went.
pub async fn sweep_expired(
    store: &dyn vidsight_store::Store,
    blobs: &dyn vidsight_blob::BlobStore,
) -> vidsight_domain::Result<usize> {
    let expired = store.expired_uploads(now_ms(), 500).await?;
    for id in &expired {
        blobs.delete_prefix(&prefix(id)).await?;
        store.delete_upload(id).await?;
    }
    Ok(expired.len())
}

/// Deletes an account's uploads' objects (before its rows go with the account).
pub(crate) async fn delete_uploads_of(
    state: &AppState,
    owner: vidsight_domain::UserId,
) -> ApiResult<()> {
    for id in state.store.uploads_of(owner).await? {
        state.blobs.delete_prefix(&prefix(&id)).await?;
    }
    Ok(())
}
