//! The fake Gemini server (`vidsight_providers::fake::gemini::FakeGemini`) as a program, with
//! a canned responder: for the web app's end-to-end test (`web/e2e/app.e2e.mjs`) and for
//! trying the UI without a Google key.
//!
//! ```sh
//! cargo run -p vidsight-providers --features fake --example fake_gemini
//! # → http://127.0.0.1:PORT   (the first line on stdout)
//! GEMINI_API_KEY=fake-gemini-key-0123456789 VIDSIGHT_GEMINI_BASE_URL=http://127.0.0.1:PORT vidsight serve
//! ```
//!
//! Analyses get one answer for whatever features the request's response schema asks for
//! (written for a 10-second clip of two cyclists, whatever the video shows; the custom
//! feature gets a value of the shape its schema says); questions get a short streamed
//! answer citing `[00:03-00:06]`, `[00:07]` and one time outside the clip. It serves on a
//! free port until it is killed.

#[cfg(feature = "fake")]
mod canned {
    use serde_json::{json, Map, Value};
    use vidsight_providers::fake::gemini::{FakeGemini, Reply};

    /// The answer to a question: text with citations, as a model writes them.
    pub const ANSWER: &str = "The riders head for the lighthouse from [00:03-00:06], and the \
        finish line comes into view at [00:07]. Nothing happens at [02:00]: the clip is only \
        ten seconds long.";

    /// What each feature answers.
    fn feature(name: &str, schema: &Value) -> Value {
        match name {
            "summary" => json!(
                "Two cyclists leave a harbour and race along the coast road \
                towards a lighthouse; the clip ends as they near the finish line."
            ),
            "chapters" => json!([
                {"title": "Leaving the harbour", "start": "00:00", "end": "00:03",
                 "summary": "The riders set off side by side."},
                {"title": "Towards the lighthouse", "start": "00:03", "end": "00:07",
                 "summary": "They speed up along the coast road."},
                {"title": "The finish", "start": "00:07", "end": "00:10",
                 "summary": "The finish line comes into view."}
            ]),
            "transcript" => json!([
                {"start": "00:00", "end": "00:03", "speaker": "Narrator", "text": "Two riders leave the harbour"},
                {"start": "00:03", "end": "00:06", "speaker": "Narrator", "text": "and race towards the lighthouse."},
                {"start": "00:07", "end": "00:09", "speaker": "Commentator", "text": "The finish line is near."}
            ]),
            "labels" => json!([
                {"name": "bicycle", "category": "object", "start": "00:00", "end": "00:05", "confidence": 0.94},
                {"name": "cyclist", "category": "person", "start": "00:00", "end": "00:10", "confidence": 0.9},
                {"name": "lighthouse", "category": "place", "start": "00:04", "end": "00:06", "confidence": 0.71},
                {"name": "bicycle", "category": "object", "start": "00:06", "end": "00:10", "confidence": 0.88}
            ]),
            "text" => json!([{"text": "FINISH", "start": "00:08", "end": "00:10"}]),
            "topics" => json!({"topics": ["cycling", "sport"],
                               "keywords": ["bicycle", "race", "harbour", "lighthouse", "coast road"]}),
            "moderation" => json!([
                {"category": "other", "severity": "low", "start": "00:04", "end": "00:05",
                 "reason": "Riders without helmets on a public road."}
            ]),
            _ => example(schema),
        }
    }

    /// A value of the shape a (Gemini-converted or standard) JSON Schema describes.
    fn example(schema: &Value) -> Value {
        let kind = schema["type"]
            .as_str()
            .unwrap_or("STRING")
            .to_ascii_lowercase();
        match kind.as_str() {
            "object" => {
                let mut object = Map::new();
                if let Some(properties) = schema["properties"].as_object() {
                    for (name, property) in properties {
                        object.insert(name.clone(), example(property));
                    }
                }
                Value::Object(object)
            }
            "array" => json!([example(&schema["items"])]),
            "integer" => json!(2),
            "number" => json!(0.5),
            "boolean" => json!(true),
            _ => match schema["enum"].as_array().and_then(|values| values.first()) {
                Some(first) => first.clone(),
                None => json!("two riders"),
            },
        }
    }

    /// Answers an analysis (a JSON response schema) or a question (plain text).
    pub fn respond(body: &Value) -> Reply {
        let config = &body["generationConfig"];
        if config["responseMimeType"] != "application/json" {
            return Reply::text(ANSWER);
        }
        let schema = if config["responseSchema"].is_object() {
            &config["responseSchema"]
        } else {
            &config["responseJsonSchema"]
        };
        let mut answer = Map::new();
        if let Some(properties) = schema["properties"].as_object() {
            for (name, property) in properties {
                answer.insert(name.clone(), feature(name, property));
            }
        }
        Reply::text(Value::Object(answer).to_string())
    }

    pub async fn serve() {
        let fake = FakeGemini::start().await;
        fake.set_responder(respond);
        // the first line on stdout: what VIDSIGHT_GEMINI_BASE_URL should be
        println!("{}", fake.base_url());
        std::future::pending::<()>().await;
    }
}

#[cfg(feature = "fake")]
#[tokio::main]
async fn main() {
    canned::serve().await;
}

#[cfg(not(feature = "fake"))]
fn main() {
    eprintln!("build with the fake feature: cargo run -p vidsight-providers --features fake --example fake_gemini");
    std::process::exit(2);
}
