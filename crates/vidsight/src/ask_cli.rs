//! The provider parts of the command line: `vidsight analyze FILE --provider …` (a provider
//! run on top of the local analysis, without a server) and `vidsight ask VIDEO "question"`
//! (a client of a running server's `/ask`, printing the answer as it streams).

use anyhow::Context;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;
use vidsight_config::Config;
use vidsight_domain::{AnalysisId, AnalysisOptions, Error, MediaInfo, Result, Video, VideoId};

/// Runs the provider the options name over a file the local analyzer has just analysed,
/// merging its grounded answer into `output`'s insights. Nothing is kept: the result cache
/// and the raw answers live in memory for this run.
pub async fn run_provider(
    config: &Config,
    file: &Path,
    media: &MediaInfo,
    options: &AnalysisOptions,
    output: &mut vidsight_analysis::AnalysisOutput,
) -> Result<()> {
    let blobs = vidsight_blob::open("memory://")?;
    let cache = vidsight_cache::open("memory://")?;
    let tools = crate::app::media_tools(config);
    let engine = crate::providers::engine(config, blobs, cache, tools).map_err(|error| {
        Error::new(
            vidsight_domain::ErrorCode::InvalidInput,
            format!("{error:#}"),
        )
    })?;
    let Some(resolved) = engine.resolve(Some(options))? else {
        return Ok(());
    };
    let sha256 = {
        let mut file = std::fs::File::open(file)
            .map_err(|error| Error::internal("cannot read the file").with_source(error))?;
        let mut hash = Sha256::new();
        std::io::copy(&mut file, &mut hash)
            .map_err(|error| Error::internal("cannot read the file").with_source(error))?;
        hex::encode(hash.finalize())
    };
    let now = time::OffsetDateTime::now_utc();
    let video = Video {
        id: VideoId::new(),
        owner_id: None,
        filename: file
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default(),
        content_type: "video/mp4".into(),
        size_bytes: std::fs::metadata(file)
            .map(|meta| meta.len() as i64)
            .unwrap_or(0),
        sha256,
        status: vidsight_domain::VideoStatus::Processing,
        progress: 0,
        error: None,
        media: media.clone(),
        latest_analysis_id: None,
        created_at: now,
        updated_at: now,
    };
    let stills = vidsight_worker::keyframe_stills(output);
    let tmp = std::env::temp_dir();
    let run = engine
        .run(
            &resolved,
            &video,
            AnalysisId::new(),
            file,
            &tmp,
            stills,
            &mut output.insights,
        )
        .await?;
    output.insights.providers.push(run);
    Ok(())
}

/// `vidsight ask`: posts the question and prints the answer as it streams, then its
/// citations and the conversation to continue.
pub async fn ask(
    server: &str,
    token: &str,
    video: &str,
    question: &str,
    conversation: Option<String>,
    provider: Option<String>,
    model: Option<String>,
) -> anyhow::Result<std::process::ExitCode> {
    let url = format!("{}/api/v1/videos/{video}/ask", server.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .post(&url)
        .bearer_auth(token)
        .json(&serde_json::json!({
            "question": question,
            "conversation": conversation,
            "provider": provider,
            "model": model,
        }))
        .send()
        .await
        .with_context(|| format!("reaching {server}"))?;
    if !response.status().is_success() {
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        eprintln!(
            "error: {} ({status})",
            body["error"]["message"]
                .as_str()
                .unwrap_or("the server refused the question")
        );
        return Ok(std::process::ExitCode::from(1));
    }
    let mut stdout = std::io::stdout();
    let mut buffer = String::new();
    let mut body = response.bytes_stream();
    let mut code = std::process::ExitCode::SUCCESS;
    while let Some(chunk) = body.next().await {
        buffer.push_str(&String::from_utf8_lossy(
            &chunk.context("the answer stream broke")?,
        ));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            let name = event
                .lines()
                .find_map(|line| line.strip_prefix("event: "))
                .unwrap_or("");
            let Some(data) = event.lines().find_map(|line| line.strip_prefix("data: ")) else {
                continue;
            };
            let data: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
            match name {
                "delta" => {
                    let _ = write!(stdout, "{}", data["text"].as_str().unwrap_or(""));
                    let _ = stdout.flush();
                }
                "done" => {
                    let _ = writeln!(stdout);
                    for citation in data["citations"].as_array().into_iter().flatten() {
                        let _ = writeln!(
                            stdout,
                            "  cited {:.1}–{:.1} s",
                            citation["start"].as_f64().unwrap_or(0.0),
                            citation["end"].as_f64().unwrap_or(0.0)
                        );
                    }
                    let _ = writeln!(
                        stdout,
                        "({} {}, {} tokens; continue with --conversation {})",
                        data["source"].as_str().unwrap_or(""),
                        data["model"].as_str().unwrap_or(""),
                        data["usage"]["total"],
                        data["conversation"].as_str().unwrap_or("")
                    );
                }
                "error" => {
                    eprintln!(
                        "\nerror: {} ({})",
                        data["message"].as_str().unwrap_or(""),
                        data["code"].as_str().unwrap_or("")
                    );
                    code = std::process::ExitCode::from(1);
                }
                _ => {}
            }
        }
    }
    Ok(code)
}
