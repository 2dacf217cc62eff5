//! Shots as WebVTT chapters.
use vidsight_domain::insights::Shot;

fn timestamp(seconds: f64) -> String {
    let millis = (seconds.max(0.0) * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        millis / 3_600_000,
        millis / 60_000 % 60,
        millis / 1000 % 60,
        millis % 1000
    )
}

pub fn chapters(shots: &[Shot]) -> String {
    let mut text = String::from("WEBVTT\n\n");
    for shot in shots {
        text.push_str(&format!(
            "shot-{}\n{} --> {}\nShot {}\n\n",
            shot.index + 1,
            timestamp(shot.start),
            timestamp(shot.end),
            shot.index + 1
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_cues() {
        let shots = vec![
            Shot {
                index: 0,
                start: 0.0,
                end: 3.754,
                keyframe: None,
            },
            Shot {
                index: 1,
                start: 3.754,
                end: 3725.5,
                keyframe: None,
            },
        ];
        assert_eq!(
            chapters(&shots),
            "WEBVTT\n\nshot-1\n00:00:00.000 --> 00:00:03.754\nShot 1\n\nshot-2\n00:00:03.754 --> 01:02:05.500\nShot 2\n\n"
        );
    }
}
