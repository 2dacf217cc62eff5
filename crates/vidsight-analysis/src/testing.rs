//! Test helpers: clips made with ffmpeg's lavfi sources, decoded to RGB frames.
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn ffmpeg(args: &[&str]) -> Vec<u8> {
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg is installed");
    assert!(
        output.status.success(),
        "ffmpeg {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Encodes a video made by the lavfi filter graph `graph` as H.264 into `dir/name`.
pub fn lavfi_clip(dir: &Path, name: &str, graph: &str) -> PathBuf {
    let path = dir.join(name);
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        graph,
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        path.to_str().expect("a UTF-8 path"),
    ]);
    path
}

/// Every frame of a file, scaled to `width` × `height` as the analysis does, packed RGB24.
pub fn file_frames(path: &Path, width: usize, height: usize) -> Vec<Vec<u8>> {
    let scale = format!("scale={width}:{height}:flags=area,format=rgb24");
    let raw = ffmpeg(&[
        "-i",
        path.to_str().expect("a UTF-8 path"),
        "-vf",
        &scale,
        "-f",
        "rawvideo",
        "pipe:1",
    ]);
    raw.chunks_exact(width * height * 3)
        .map(<[u8]>::to_vec)
        .collect()
}

/// The first `frames` frames of a lavfi source (through H.264, like an upload), scaled to
/// `width` × `height`.
pub fn lavfi_frames(source: &str, frames: usize, width: usize, height: usize) -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let clip = dir.path().join("clip.mp4");
    let count = frames.to_string();
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        source,
        "-frames:v",
        &count,
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        clip.to_str().expect("a UTF-8 path"),
    ]);
    file_frames(&clip, width, height)
}

/// `../shared/media` beside the repository, when present.
pub fn shared_media() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/media");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("SKIP: {} is absent", dir.display());
        None
    }
}
