//! Child processes with limits. Written by hand (a few lines of `setrlimit` in `pre_exec`)
//! because no maintained crate offers rlimits on tokio's `Command`.
use std::process::Stdio;
use std::time::Duration;
use vidsight_domain::{Error, ErrorCode, Result};

/// Resource limits applied to each child with `setrlimit` before it runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChildLimits {
    /// Address-space limit in bytes (`RLIMIT_AS`); `None` for no limit.
    pub memory_bytes: Option<u64>,
    /// CPU seconds (`RLIMIT_CPU`); the kernel kills the child past it.
    pub cpu_seconds: Option<u64>,
    /// Added to the child's niceness (0: as this process's), so that it yields the cores
    /// to the work it runs beside (see [`crate::MediaTools::yielding`]). Best effort.
    pub nice: i32,
}

/// What a finished child left behind.
#[derive(Debug)]
pub struct ToolOutput {
    pub success: bool,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

pub(crate) fn limited_command(program: &str, limits: &ChildLimits) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(program);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let limits = *limits;
    // SAFETY: the closure runs in the forked child before exec and only makes system
    // calls (setrlimit, and getpriority/setpriority in `nice`), allocating nothing.
    unsafe {
        command.pre_exec(move || {
            if limits.nice != 0 {
                // best effort: where the niceness cannot change, the child runs all the same
                libc::nice(limits.nice);
            }
            if let Some(bytes) = limits.memory_bytes {
                set_limit(libc::RLIMIT_AS, bytes)?;
            }
            if let Some(seconds) = limits.cpu_seconds {
                set_limit(libc::RLIMIT_CPU, seconds)?;
            }
            Ok(())
        });
    }
    command
}

fn set_limit(resource: libc::__rlimit_resource_t, value: u64) -> std::io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: value as libc::rlim_t,
        rlim_max: value as libc::rlim_t,
    };
    // SAFETY: plain syscall with a valid pointer to a local struct.
    if unsafe { libc::setrlimit(resource, &limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Runs a command to completion within `timeout`, capturing its output. On timeout the
/// child is killed (kill-on-drop) and `media-timeout` returned.
pub(crate) async fn run(
    mut command: tokio::process::Command,
    timeout: Duration,
    tool: &str,
) -> Result<ToolOutput> {
    let child = command.spawn().map_err(|error| spawn_error(tool, error))?;
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(output)) => Ok(ToolOutput {
            success: output.status.success(),
            stdout: output.stdout,
            stderr: output.stderr,
        }),
        Ok(Err(error)) => Err(Error::new(
            ErrorCode::MediaToolFailed,
            format!("{tool} could not be run to completion"),
        )
        .with_source(error)),
        Err(_) => Err(Error::new(
            ErrorCode::MediaTimeout,
            format!(
                "{tool} took longer than {} s and was stopped",
                timeout.as_secs()
            ),
        )),
    }
}

pub fn spawn_error(tool: &str, error: std::io::Error) -> Error {
    let message = if error.kind() == std::io::ErrorKind::NotFound {
        format!("{tool} is not installed or not on PATH (set media.{tool} in the configuration)")
    } else {
        format!("{tool} could not be started")
    };
    Error::new(ErrorCode::MediaToolFailed, message).with_source(error)
}

/// Asks the kernel for a pipe buffer of `bytes` (Linux; capped by
/// `/proc/sys/fs/pipe-max-size`, 1 MiB by default) so that a child writing large records
/// (decoded pictures) runs ahead of its reader instead of waiting on every 64 KiB. Best
/// effort: the size the pipe has, or `None` when it could not be changed.
pub fn enlarge_pipe(pipe: &impl std::os::fd::AsRawFd, bytes: usize) -> Option<usize> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: fcntl on a descriptor the caller owns; F_SETPIPE_SZ takes an int and
        // touches no memory of ours
        let result =
            unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, bytes as libc::c_int) };
        (result > 0).then_some(result as usize)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (pipe, bytes);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The niceness `nice` (coreutils) reports of itself, started with `limits`.
    async fn niceness(limits: ChildLimits) -> i32 {
        let output = run(
            limited_command("nice", &limits),
            Duration::from_secs(10),
            "nice",
        )
        .await
        .unwrap();
        assert!(output.success);
        String::from_utf8(output.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    #[tokio::test]
    async fn a_child_told_to_yield_runs_nicer() {
        let usual = niceness(ChildLimits::default()).await;
        let nicer = niceness(ChildLimits {
            nice: 10,
            ..ChildLimits::default()
        })
        .await;
        assert_eq!(nicer, (usual + 10).min(19));
        // more than the scale holds: as nice as can be, and the child runs
        let nicest = niceness(ChildLimits {
            nice: 100,
            ..ChildLimits::default()
        })
        .await;
        assert_eq!(nicest, 19);
    }
}
