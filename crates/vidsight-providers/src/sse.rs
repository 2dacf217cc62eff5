//! Server-Sent Events as both providers stream them: `data:` lines, events separated by a
//! blank line (`\n\n` or `\r\n\r\n`). Written here because it is twenty lines and the crates
//! that do it bring an HTTP client of their own.

use bytes::Bytes;
use futures::{Stream, StreamExt};

/// The `data` of each event, in order. Comments and other fields are skipped.
pub fn data_events<S, E>(body: S) -> impl Stream<Item = Result<String, E>>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    // bytes, not text: a read can end inside a multi-byte character, so an event is decoded
    // only once it is whole (its blank line, ASCII, cannot fall inside a character)
    futures::stream::unfold(
        (body, Vec::new(), false),
        |(mut body, mut buffer, mut ended)| async move {
            loop {
                if let Some((event, rest)) = split_event(&buffer) {
                    buffer = rest;
                    if let Some(data) = event_data(&String::from_utf8_lossy(&event)) {
                        return Some((Ok(data), (body, buffer, ended)));
                    }
                    continue;
                }
                if ended {
                    // a last event without its blank line
                    let event = std::mem::take(&mut buffer);
                    return event_data(&String::from_utf8_lossy(&event))
                        .map(|data| (Ok(data), (body, buffer, true)));
                }
                match body.next().await {
                    Some(Ok(bytes)) => buffer.extend_from_slice(&bytes),
                    Some(Err(error)) => return Some((Err(error), (body, buffer, true))),
                    None => ended = true,
                }
            }
        },
    )
}

fn split_event(buffer: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let find = |pattern: &[u8]| {
        buffer
            .windows(pattern.len())
            .position(|window| window == pattern)
    };
    let normalized = find(b"\r\n\r\n").map(|at| (at, 4));
    let plain = find(b"\n\n").map(|at| (at, 2));
    let (at, length) = match (normalized, plain) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    Some((buffer[..at].to_vec(), buffer[at + length..].to_vec()))
}

fn event_data(event: &str) -> Option<String> {
    let lines: Vec<&str> = event
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(|line| line.strip_prefix(' ').unwrap_or(line))
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn events_split_across_chunks_are_put_together() {
        let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::from_static(b": comment\r\n\r\ndata: {\"a\"")),
            Ok(Bytes::from_static(b":1}\r\n\r\ndata: two\n\ndata: [DONE]")),
        ];
        let events: Vec<String> = data_events(futures::stream::iter(chunks))
            .map(|event| event.unwrap())
            .collect()
            .await;
        assert_eq!(events, vec!["{\"a\":1}", "two", "[DONE]"]);
    }

    #[tokio::test]
    async fn a_character_split_between_reads_is_kept_whole() {
        let event = "data: caf\u{e9} cr\u{e8}me\n\n".as_bytes();
        // "é" is two bytes: end the first read between them
        let split = event.iter().position(|byte| *byte == 0xC3).unwrap() + 1;
        let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::copy_from_slice(&event[..split])),
            Ok(Bytes::copy_from_slice(&event[split..])),
        ];
        let events: Vec<String> = data_events(futures::stream::iter(chunks))
            .map(|event| event.unwrap())
            .collect()
            .await;
        assert_eq!(events, vec!["caf\u{e9} cr\u{e8}me"]);
    }
}
