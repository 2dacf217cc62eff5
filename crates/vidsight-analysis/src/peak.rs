//! The sound's true peak (ITU-R BS.1770-4 Annex 2: the largest magnitude of the signal
//! oversampled four times), measured in Rust by the `ebur128` crate on the samples an
//! ffmpeg writes, as 32-bit float WAV, to a pipe of its own (its descriptor 3).
//!
//! ffmpeg's own `ebur128=peak=true` measures the same, but costs more than the rest of the
//! sound's measuring together: ffmpeg 5.1 resamples every channel to 192 kHz in double
//! precision with 32-tap filters (ten minutes of stereo: 1.8 s of CPU, against 0.6 s
//! here), and, in a video decoded by one process, on the thread that also runs the
//! pictures' filters. Here it runs on a thread of the analysing process, beside the rest.
//! The integrated loudness, its range and the momentary values stay ffmpeg's.

use std::io::{ErrorKind, Read};
use std::os::fd::OwnedFd;

use command_fds::{CommandFdExt, FdMapping};
use tokio::process::Command;
use tokio::sync::oneshot;

/// The child's descriptor the samples are written to.
const CHILD_FD: i32 = 3;

/// Header chunks skipped before the samples, at most (ffmpeg writes a few dozen bytes).
const MAX_SKIPPED_CHUNK: u64 = 1 << 20;

/// The measuring of one ffmpeg's sound, on a thread of its own.
pub struct TruePeak {
    result: oneshot::Receiver<Result<f64, String>>,
}

/// Ends `command`'s sound output (its `-map` and `-af` already given) with the samples
/// written to a pipe that a [`TruePeak`] measures; where no pipe can be made, with nothing
/// written (`-f null -`) and no `TruePeak` (the loudness then goes without a true peak).
pub fn output(command: &mut Command) -> Option<TruePeak> {
    match pipe_to(command) {
        Ok(peak) => Some(peak),
        Err(error) => {
            tracing::warn!(%error, "no pipe for the sound's samples: its true peak is not measured");
            command.args(["-f", "null", "-"]);
            None
        }
    }
}

fn pipe_to(command: &mut Command) -> std::io::Result<TruePeak> {
    let (reader, writer) = std::io::pipe()?;
    let (sender, result) = oneshot::channel();
    // the thread ends when the pipe does: when the child exits or is killed, or, if it is
    // never started, when the command (which holds the writing end until then) is dropped
    std::thread::Builder::new()
        .name("true-peak".into())
        .spawn(move || {
            let _ = sender.send(measure(reader));
        })?;
    command
        .fd_mappings(vec![FdMapping {
            parent_fd: OwnedFd::from(writer),
            child_fd: CHILD_FD,
        }])
        .map_err(|_| std::io::Error::other("the samples' descriptor is mapped twice"))?;
    command.args(["-c:a", "pcm_f32le", "-f", "wav"]);
    command.arg(format!("pipe:{CHILD_FD}"));
    Ok(TruePeak { result })
}

impl TruePeak {
    /// The largest true peak of any channel (linear, 1.0 the full scale), once the writer
    /// has ended; `None` where nothing could be measured (said in the log).
    pub async fn finish(self) -> Option<f64> {
        match self.result.await {
            Ok(Ok(peak)) => Some(peak),
            Ok(Err(error)) => {
                tracing::warn!(%error, "the sound's true peak could not be measured");
                None
            }
            Err(_) => {
                tracing::warn!("the true peak's thread ended without an answer");
                None
            }
        }
    }
}

/// A linear peak in dBTP, to a tenth (as ffmpeg's summary gives it), floored at
/// [`crate::LEVEL_FLOOR`] (silence).
pub fn dbtp(linear: f64) -> f64 {
    (crate::logparse::finite_or_floor(20.0 * linear.log10()) * 10.0).round() / 10.0
}

fn measure(mut pipe: impl Read) -> Result<f64, String> {
    let (channels, rate) = wav_format(&mut pipe)?;
    let mut meter = ebur128::EbuR128::new(channels, rate, ebur128::Mode::TRUE_PEAK)
        .map_err(|error| format!("{channels} channels at {rate} Hz: {error}"))?;
    let frame = 4 * channels as usize;
    let mut bytes = vec![0u8; frame * 4096];
    let mut samples = Vec::with_capacity(channels as usize * 4096);
    let mut filled = 0;
    loop {
        let read = match pipe.read(&mut bytes[filled..]) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            Err(error) => return Err(error.to_string()),
        };
        filled += read;
        let whole = filled - filled % frame;
        samples.clear();
        samples.extend(
            bytes[..whole]
                .chunks_exact(4)
                .map(|sample| f32::from_le_bytes([sample[0], sample[1], sample[2], sample[3]])),
        );
        meter
            .add_frames_f32(&samples)
            .map_err(|error| error.to_string())?;
        bytes.copy_within(whole..filled, 0);
        filled -= whole;
    }
    Ok((0..channels)
        .filter_map(|channel| meter.true_peak(channel).ok())
        .fold(0.0, f64::max))
}

/// Reads a WAV header up to its samples: the channels and the rate, of 32-bit samples.
fn wav_format(pipe: &mut impl Read) -> Result<(u32, u32), String> {
    let mut riff = [0u8; 12];
    pipe.read_exact(&mut riff)
        .map_err(|_| "no sound came through the pipe".to_string())?;
    if &riff[..4] != b"RIFF" || &riff[8..] != b"WAVE" {
        return Err("the samples are not WAV".into());
    }
    let mut format = None;
    loop {
        let mut head = [0u8; 8];
        pipe.read_exact(&mut head)
            .map_err(|_| "the WAV header ends early".to_string())?;
        let size = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        match &head[..4] {
            b"fmt " => {
                if !(16..=1024).contains(&size) {
                    return Err(format!("a WAV format chunk of {size} bytes"));
                }
                let mut body = vec![0u8; size + size % 2];
                pipe.read_exact(&mut body)
                    .map_err(|_| "the WAV header ends early".to_string())?;
                let channels = u16::from_le_bytes([body[2], body[3]]) as u32;
                let rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
                let bits = u16::from_le_bytes([body[14], body[15]]);
                if bits != 32 {
                    return Err(format!("{bits}-bit samples, not 32"));
                }
                format = Some((channels, rate));
            }
            b"data" => return format.ok_or_else(|| "WAV samples before their format".into()),
            _ => {
                let skipped = (size + size % 2) as u64;
                if skipped > MAX_SKIPPED_CHUNK {
                    return Err(format!("a WAV header chunk of {size} bytes"));
                }
                let copied = std::io::copy(&mut pipe.by_ref().take(skipped), &mut std::io::sink())
                    .map_err(|error| error.to_string())?;
                if copied != skipped {
                    return Err("the WAV header ends early".into());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `source` (a lavfi audio source) for `seconds`, its true peak measured here and by
    /// ffmpeg's `ebur128=peak=true`, and its sample peak (dBFS).
    async fn measured(source: &str, seconds: &str) -> (f64, f64, f64) {
        let mut command = Command::new("ffmpeg");
        command
            .args([
                "-hide_banner",
                "-nostdin",
                "-v",
                "error",
                "-f",
                "lavfi",
                "-i",
            ])
            .arg(source)
            .args(["-t", seconds, "-map", "0:a:0"]);
        let peak = output(&mut command).expect("a pipe");
        let mut child = command.spawn().unwrap();
        // the command holds the pipe's writing end until it is dropped
        drop(command);
        assert!(child.wait().await.unwrap().success());
        let ours = dbtp(peak.finish().await.expect("measured"));
        let theirs = |mode: &str| {
            let output = std::process::Command::new("ffmpeg")
                .args(["-hide_banner", "-nostdin", "-nostats", "-f", "lavfi", "-i"])
                .arg(source)
                .args(["-t", seconds, "-af"])
                .arg(format!("ebur128=peak={mode}"))
                .args(["-f", "null", "-"])
                .output()
                .unwrap();
            let log = String::from_utf8_lossy(&output.stderr).into_owned();
            let line = log
                .lines()
                .rev()
                .find(|line| line.trim_start().starts_with("Peak:"))
                .unwrap_or_else(|| panic!("no peak in {log}"))
                .to_owned();
            line.split_whitespace()
                .nth(1)
                .unwrap()
                .parse::<f64>()
                .unwrap()
        };
        (ours, theirs("true"), theirs("sample"))
    }

    /// A sine at a quarter of the rate, sampled 45° off its crests: every sample is at
    /// 0.707 of the crest (-6.02 dBFS), which the true peak finds and the sample peak misses
    /// by 3 dB. (ffmpeg's `ebur128=peak=true` reads -5.4 here: its resampler overshoots
    /// this close to the band's edge.)
    #[tokio::test]
    async fn the_true_peak_is_found_between_the_samples() {
        let (ours, theirs, sample) = measured(
            "aevalsrc=0.5*sin(2*PI*12000*t+PI/4)|0.25*sin(2*PI*1000*t):s=48000",
            "2",
        )
        .await;
        assert!((ours - -6.0).abs() <= 0.2, "{ours} dBTP");
        assert!(ours - sample >= 2.5, "{ours} dBTP, sample peak {sample}");
        assert!(theirs >= ours, "ffmpeg's {theirs} under {ours}");
    }

    /// Noise in six channels at 44.1 kHz (the rate ffmpeg resamples by an odd ratio),
    /// the loudest channel the last, and silence.
    #[tokio::test]
    async fn the_true_peak_is_ffmpegs_on_noise_in_many_channels_and_silence() {
        let (ours, theirs, _) = measured(
            "anoisesrc=r=44100:a=0.1:c=pink:seed=7,pan=5.1|c0=0.5*c0|c1=0.5*c0|c2=0.3*c0|c3=0.1*c0|c4=0.2*c0|c5=c0",
            "3",
        )
        .await;
        assert!(
            (ours - theirs).abs() <= 0.2,
            "{ours} against ffmpeg's {theirs}"
        );
        let (silent, _, _) = measured("anullsrc=r=48000:cl=stereo", "1").await;
        assert_eq!(silent, crate::LEVEL_FLOOR);
    }

    #[test]
    fn a_header_that_is_not_wav_or_not_float_is_refused() {
        let mut not_wav = &b"ID3\x03\0\0\0\0\0\0\0\0 and more"[..];
        assert!(measure(&mut not_wav).is_err());
        let mut header = Vec::new();
        header.extend_from_slice(b"RIFF\xff\xff\xff\xffWAVEfmt \x10\0\0\0");
        // PCM, 2 channels, 48 kHz, 192000 bytes/s, block 4, 16 bits
        header.extend_from_slice(&[1, 0, 2, 0, 0x80, 0xbb, 0, 0, 0, 0xee, 2, 0, 4, 0, 16, 0]);
        header.extend_from_slice(b"data\xff\xff\xff\xff");
        assert!(measure(&header[..]).unwrap_err().contains("16-bit"));
        let mut empty = &b""[..];
        assert!(measure(&mut empty).is_err());
    }
}
