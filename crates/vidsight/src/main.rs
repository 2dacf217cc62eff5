//! The `vidsight` command line.
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use vidsight::app;
use vidsight_config::{Config, ConfigSource, LogFormat, Overrides};
use vidsight_domain::Insights;

#[derive(Parser)]
#[command(name = "vidsight", version, about = "Self-hosted video intelligence")]
struct Cli {
    /// Configuration file (default: ./vidsight.toml when it exists).
    #[arg(long, global = true, env = "VIDSIGHT_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the server: the API, the worker, or both (the default).
    Serve {
        /// Roles to run: `all`, or a comma-separated set of `api` and `worker`.
        #[arg(long)]
        roles: Option<String>,
        /// Address the API listens on.
        #[arg(long)]
        addr: Option<SocketAddr>,
        /// Directory for the embedded database, objects and temporary files.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Analyses a local file with the same pipeline as the server, without a server.
    Analyze {
        file: PathBuf,
        /// Print the insights document (JSON) instead of a summary.
        #[arg(long)]
        json: bool,
        /// Write keyframe images, their thumbnails and the storyboard's sheets (under
        /// `storyboard/`) into this directory.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Also ask a provider (`gemini` or `openai`, configured in `[providers]`; Gemini
        /// reads GEMINI_API_KEY) for what the local analyzer cannot see.
        #[arg(long)]
        provider: Option<String>,
        /// The provider's model (default: the configured one).
        #[arg(long)]
        model: Option<String>,
        /// Comma-separated: summary, chapters, transcript, labels, text, topics, moderation.
        #[arg(long, value_delimiter = ',')]
        features: Vec<String>,
    },
    /// Asks a question about a video on a running server; the answer streams as it is written.
    Ask {
        /// The video's id.
        video: String,
        question: String,
        /// Continue this conversation (printed after each answer).
        #[arg(long)]
        conversation: Option<String>,
        /// `gemini` or `openai` (default: the server's).
        #[arg(long)]
        provider: Option<String>,
        #[arg(long)]
        model: Option<String>,
        /// The server.
        #[arg(long, env = "VIDSIGHT_SERVER", default_value = "http://127.0.0.1:8080")]
        server: String,
        /// An API key (`vidsight apikey create`).
        #[arg(long, env = "VIDSIGHT_TOKEN", hide_env_values = true)]
        token: String,
    },
    /// Applies pending database migrations and exits.
    Migrate,
    /// Copies the database and objects of one install to other backends (e.g. embedded to
    /// production), then verifies counts, sizes and hashes. Safe to re-run: it resumes.
    MigrateData {
        /// Configuration file of the install to copy from (environment variables are not read).
        #[arg(long)]
        from: PathBuf,
        /// Configuration file of the install to copy to.
        #[arg(long)]
        to: PathBuf,
    },
    /// Account administration.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// API keys.
    Apikey {
        #[command(subcommand)]
        command: ApikeyCommand,
    },
    /// Configuration commands.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Exits 0 when URL answers 2xx (for container health checks), 1 otherwise.
    Healthcheck {
        /// e.g. http://127.0.0.1:8080/readyz (a bare address checks /healthz).
        url: String,
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 5)]
        timeout: u64,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Creates an account. The password is read from stdin when piped; otherwise a one-time
    /// password is generated and printed.
    Create {
        email: String,
        /// Make the account an administrator.
        #[arg(long)]
        admin: bool,
    },
    /// Sets a new password (stdin, or a printed one-time one) and ends every session.
    ResetPassword { email: String },
}

#[derive(Subcommand)]
enum ApikeyCommand {
    /// Creates an API key for an account and prints it (once).
    Create {
        /// The account's email.
        #[arg(long)]
        user: String,
        /// What the key is for.
        #[arg(long, default_value = "cli")]
        name: String,
        /// Comma-separated: read, write, admin.
        #[arg(long, default_value = "read,write")]
        scopes: String,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Prints the merged configuration (defaults → file → environment), secrets redacted.
    Show,
}

fn load_config(cli_config: &Option<PathBuf>, overrides: &Overrides) -> anyhow::Result<Config> {
    let source = match cli_config {
        Some(path) => ConfigSource::File(path),
        None => ConfigSource::Default,
    };
    Ok(Config::load(source, overrides)?)
}

fn init_logging(config: &Config, default_level: Option<&str>) {
    let format = match config.log.format {
        LogFormat::Text => vidsight_telemetry::LogFormat::Text,
        LogFormat::Json => vidsight_telemetry::LogFormat::Json,
    };
    vidsight_telemetry::init_logging(format, default_level.unwrap_or(&config.log.level));
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    use std::process::ExitCode;
    match cli.command {
        Command::Serve {
            roles,
            addr,
            data_dir,
        } => {
            let overrides = Overrides {
                addr,
                roles,
                data_dir,
            };
            let config = load_config(&cli.config, &overrides)?;
            init_logging(&config, None);
            let _ = vidsight_telemetry::metrics_handle();
            let shutdown = CancellationToken::new();
            let running = app::start(&config, shutdown.clone()).await?;
            if let Some(addr) = running.api_addr {
                println!("vidsight listening on http://{addr}");
            }
            wait_for_signal().await;
            tracing::info!("shutting down");
            running.stop().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Analyze {
            file,
            json,
            out,
            provider,
            model,
            features,
        } => {
            let config = load_config(&cli.config, &Overrides::default())?;
            init_logging(&config, Some("warn"));
            let options = match provider {
                None => None,
                Some(provider) => Some(vidsight_domain::AnalysisOptions {
                    provider: Some(
                        vidsight_domain::Source::parse(&provider).with_context(|| {
                            format!("--provider {provider}: use gemini or openai")
                        })?,
                    ),
                    model,
                    features: features
                        .iter()
                        .map(|name| {
                            vidsight_domain::Feature::parse(name)
                                .with_context(|| format!("--features: unknown feature `{name}`"))
                        })
                        .collect::<anyhow::Result<_>>()?,
                    ..Default::default()
                }),
            };
            analyze(&config, &file, json, out, options).await
        }
        Command::Ask {
            video,
            question,
            conversation,
            provider,
            model,
            server,
            token,
        } => {
            vidsight::ask_cli::ask(
                &server,
                &token,
                &video,
                &question,
                conversation,
                provider,
                model,
            )
            .await
        }
        Command::Migrate => {
            let config = load_config(&cli.config, &Overrides::default())?;
            init_logging(&config, None);
            let url = config.database_url();
            vidsight_store::open(&url, &app::database_options(&config), true)
                .await
                .with_context(|| format!("migrating {}", vidsight_config::redact_url(&url)))?;
            println!(
                "database is up to date: {}",
                vidsight_config::redact_url(&url)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::MigrateData { from, to } => {
            let from_config = Config::from_file(&from)?;
            let to_config = Config::from_file(&to)?;
            init_logging(&to_config, Some("warn"));
            let report = vidsight::migrate_data::run(&from_config, &to_config).await?;
            println!(
                "copied {} accounts, {} videos ({} already there), {} objects, {} bytes; verified {} videos",
                report.users_copied,
                report.videos_copied,
                report.videos_already_there,
                report.objects_copied,
                report.bytes_copied,
                report.videos_verified
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::User { command } => {
            let config = load_config(&cli.config, &Overrides::default())?;
            init_logging(&config, Some("warn"));
            match command {
                UserCommand::Create { email, admin } => {
                    vidsight::accounts_cli::create_user(&config, &email, admin).await?
                }
                UserCommand::ResetPassword { email } => {
                    vidsight::accounts_cli::reset_password(&config, &email).await?
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Apikey {
            command: ApikeyCommand::Create { user, name, scopes },
        } => {
            let config = load_config(&cli.config, &Overrides::default())?;
            init_logging(&config, Some("warn"));
            vidsight::accounts_cli::create_api_key(&config, &user, &name, &scopes).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Config {
            command: ConfigCommand::Show,
        } => {
            let config = load_config(&cli.config, &Overrides::default())?;
            println!("{}", serde_json::to_string_pretty(&config.redacted())?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Healthcheck { url, timeout } => {
            let url = if url.trim_end_matches('/').matches('/').count() <= 2 {
                format!("{}/healthz", url.trim_end_matches('/'))
            } else {
                url
            };
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(timeout))
                .build()?;
            match client.get(&url).send().await {
                Ok(response) if response.status().is_success() => {
                    println!("ok: {url} answered {}", response.status());
                    Ok(ExitCode::SUCCESS)
                }
                Ok(response) => {
                    println!("unhealthy: {url} answered {}", response.status());
                    Ok(ExitCode::from(1))
                }
                Err(error) => {
                    println!("unhealthy: {url}: {error}");
                    Ok(ExitCode::from(1))
                }
            }
        }
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Says why a file cannot be analysed, with its stable code; exit status 1.
fn refuse(file: &std::path::Path, error: &vidsight_domain::Error) -> std::process::ExitCode {
    eprintln!(
        "error: {}: {} ({})",
        file.display(),
        error.message,
        error.code
    );
    std::process::ExitCode::from(1)
}

async fn analyze(
    config: &Config,
    file: &std::path::Path,
    json: bool,
    out: Option<PathBuf>,
    options: Option<vidsight_domain::AnalysisOptions>,
) -> anyhow::Result<std::process::ExitCode> {
    let tools = app::media_tools(config);
    let settings = &config.analysis;
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(1000),
        if std::io::stderr().is_terminal() {
            indicatif::ProgressDrawTarget::stderr()
        } else {
            indicatif::ProgressDrawTarget::hidden()
        },
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} analysing [{bar:40}] {percent:>3}% {elapsed} (eta {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    let progress_bar = bar.clone();
    let report = move |fraction: f64| progress_bar.set_position((fraction * 1000.0) as u64);
    // an MP4's index tells most of what the probe will say: the analysis starts on that
    // guess beside the probe (kept only where the probe agrees, see
    // `analyze_beside_probe`); the checks an upload gets (the first frame decodes, the end
    // reads) run beside both. A failed check stops the analysis and is what the user is
    // told; where the first check fails, the file is probed again to tell which check
    // failed and say it in its own words. The probe and the checks run nicer than the
    // analysis (`yielding`): they fill what its processes leave of the cores.
    let guess = tools.guess(file).await;
    let beside = tools.yielding();
    let analysis = vidsight_analysis::analyze_beside_probe(
        &tools,
        file,
        guess,
        beside.probe(file),
        settings,
        &report,
    );
    let checks = async {
        if beside.first_readable_check(file).await? {
            return Ok(());
        }
        let media = beside.probe(file).await?;
        beside.check_readable_after(file, &media, false).await
    };
    tokio::pin!(checks, analysis);
    let output = tokio::select! {
        checked = &mut checks => match checked {
            Ok(()) => analysis.as_mut().await,
            Err(error) => Err(error),
        },
        output = &mut analysis => checks.as_mut().await.and(output),
    };
    bar.finish_and_clear();
    let (media, mut output) = match output {
        Ok(probed) => probed,
        Err(error) => return Ok(refuse(file, &error)),
    };
    if let Some(options) = options {
        if let Err(error) =
            vidsight::ask_cli::run_provider(config, file, &media, &options, &mut output).await
        {
            return Ok(refuse(file, &error));
        }
    }
    if let Some(dir) = &out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for keyframe in &output.keyframes {
            for (name, jpeg) in [
                (&keyframe.name, &keyframe.jpeg),
                (&keyframe.thumbnail.name, &keyframe.thumbnail.jpeg),
            ] {
                let path = dir.join(name);
                std::fs::write(&path, jpeg)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
        if !output.storyboard.is_empty() {
            let sheets = dir.join("storyboard");
            std::fs::create_dir_all(&sheets)
                .with_context(|| format!("creating {}", sheets.display()))?;
            for sheet in &output.storyboard {
                let path = sheets.join(&sheet.name);
                std::fs::write(&path, &sheet.jpeg)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
    }
    if json {
        print_out(&(serde_json::to_string_pretty(&output.insights)? + "\n"));
    } else {
        print_summary(file, &output.insights, out.as_deref());
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// The readable summary of `analyze`. Written with errors ignored, so `| head` is fine.
fn print_summary(file: &std::path::Path, insights: &Insights, out: Option<&std::path::Path>) {
    use std::fmt::Write as _;
    let mut text = String::new();
    let media = &insights.media;
    let audio = media.audio_codec.as_deref().unwrap_or("no audio");
    let _ = writeln!(
        text,
        "{}: {:.2} s, {}x{} (shown {}x{}, {}), {:.3} fps{}, {} / {}",
        file.display(),
        media.duration,
        media.width,
        media.height,
        media.display_width,
        media.display_height,
        media.display_aspect,
        media.fps,
        if media.variable_frame_rate {
            " (variable)"
        } else {
            ""
        },
        media.video_codec,
        audio
    );
    let cuts = insights
        .transitions
        .iter()
        .filter(|transition| transition.kind == vidsight_domain::insights::TransitionKind::Cut)
        .count();
    let _ = writeln!(
        text,
        "{} shots, {} cuts, {} gradual transitions",
        insights.shots.len(),
        cuts,
        insights.transitions.len() - cuts
    );
    for shot in &insights.shots {
        let _ = writeln!(
            text,
            "  shot {:>3}  {:>9.3} – {:>9.3} s  {}",
            shot.index + 1,
            shot.start,
            shot.end,
            match (&shot.keyframe, out) {
                (Some(name), Some(dir)) => dir.join(name).display().to_string(),
                (Some(name), None) => name.clone(),
                (None, _) => String::new(),
            }
        );
    }
    let segments = |segments: &[vidsight_domain::insights::Segment]| {
        if segments.is_empty() {
            "none".to_owned()
        } else {
            segments
                .iter()
                .map(|segment| format!("{:.3}–{:.3} s", segment.start, segment.end))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let _ = writeln!(text, "black: {}", segments(&insights.black));
    let _ = writeln!(text, "colour bars: {}", segments(&insights.bars));
    let _ = writeln!(text, "silence: {}", segments(&insights.silence));
    let _ = match &insights.loudness {
        Some(loudness) => writeln!(
            text,
            "loudness: {:.1} LUFS integrated, {:.1} LU range, {:.1} dBTP true peak",
            loudness.integrated_lufs, loudness.lra, loudness.true_peak_dbtp
        ),
        None => writeln!(text, "loudness: no audio"),
    };
    if let Some(summary) = &insights.summary {
        let _ = writeln!(text, "summary ({}): {}", summary.source, summary.text);
    }
    for chapter in &insights.chapters {
        let _ = writeln!(
            text,
            "  chapter {:>9.3} – {:>9.3} s  {}{}",
            chapter.start,
            chapter.end,
            chapter.title,
            if chapter.snapped { " (snapped)" } else { "" }
        );
    }
    for segment in &insights.transcript {
        let _ = writeln!(
            text,
            "  {:>9.3} s  {}: {}",
            segment.start,
            segment.speaker.as_deref().unwrap_or("?"),
            segment.text
        );
    }
    for run in &insights.providers {
        let _ = writeln!(
            text,
            "{} {}: {} tokens{}{}",
            run.source,
            run.model,
            run.usage.total,
            run.cost_usd
                .map(|cost| format!(", ${cost:.4}"))
                .unwrap_or_default(),
            if run.cached { " (cached)" } else { "" }
        );
        for warning in &run.warnings {
            let _ = writeln!(text, "  note: {warning}");
        }
    }
    print_out(&text);
}

/// Writes to stdout, ignoring a closed pipe (`vidsight analyze x | head` must not panic).
fn print_out(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}
