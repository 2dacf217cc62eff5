//! The web app's files, served by the binary: built into it from `web/dist` (rust-embed), or
//! read from `http.web_dir` when set (development). Hashed assets under `/assets/` are cached
//! for a year (`immutable`); `index.html` is revalidated every time (`no-cache`); any other
//! path without a file extension is the single-page app's route and gets `index.html`.
use axum::body::Body;
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::path::{Component, Path, PathBuf};

#[derive(rust_embed::Embed)]
#[folder = "../../web/dist"]
#[allow_missing = true]
struct Built;

/// Whether this binary was built with the web app (`web/dist` existed when it was compiled).
pub fn built_in() -> bool {
    Built::get("index.html").is_some()
}

/// Shown when the binary was built without the web app.
const NOT_BUILT: &str =
    "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>vidsight</title>\
<body style=\"font-family:system-ui;max-width:40rem;margin:4rem auto;line-height:1.5\">\
<h1>vidsight</h1><p>The web app is not part of this build (build it with <code>make run</code>, \
which runs <code>npm ci</code> and the Vite build first).</p>\
<p>The API is here: <a href=\"/api/docs\">/api/docs</a>.</p></body></html>";

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "ico" => "image/x-icon",
        "webp" => "image/webp",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        "webmanifest" => "application/manifest+json",
        _ => "application/octet-stream",
    }
}

/// A file of the app: from `dir` when given, else from what was built in.
async fn file(dir: Option<&Path>, path: &str) -> Option<Vec<u8>> {
    match dir {
        Some(dir) => {
            let relative = PathBuf::from(path);
            // only plain names below the directory
            if relative
                .components()
                .any(|part| !matches!(part, Component::Normal(_)))
            {
                return None;
            }
            tokio::fs::read(dir.join(relative)).await.ok()
        }
        None => Built::get(path).map(|file| file.data.into_owned()),
    }
}

fn respond(path: &str, bytes: Vec<u8>, cache: &'static str) -> Response {
    let mut response = Response::new(Body::from(bytes));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

/// Serves `uri` from the web app (GET and HEAD), `None` for paths that are not its.
pub async fn serve(dir: Option<&Path>, method: &Method, uri: &Uri) -> Option<Response> {
    let path = uri.path();
    if !(method == Method::GET || method == Method::HEAD) || path.starts_with("/api/") {
        return None;
    }
    let name = path.trim_start_matches('/');
    let last = name.rsplit('/').next().unwrap_or("");
    if !name.is_empty() && last.contains('.') {
        let bytes = file(dir, name).await?;
        let cache = if name.starts_with("assets/") {
            "public, max-age=31536000, immutable"
        } else {
            "public, max-age=3600"
        };
        return Some(respond(name, bytes, cache));
    }
    // a route of the app: its page
    Some(match file(dir, "index.html").await {
        Some(index) => respond("index.html", index, "no-cache"),
        None => {
            let mut response = (StatusCode::OK, NOT_BUILT).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response
        }
    })
}
