//! A blocking SSE reader for tests: frames parsed as a browser would, delivered over a
//! channel so a test can wait for one with a deadline.

use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// One SSE frame.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Frame {
    pub event: Option<String>,
    pub id: Option<String>,
    pub data: String,
}

impl Frame {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).expect("SSE data is JSON")
    }
}

pub struct Subscription {
    frames: mpsc::Receiver<Option<Frame>>,
}

impl Subscription {
    /// Connects to `url` (the whole `/detect/stream?…` URL) and reads in a thread.
    pub fn open(url: &str) -> Self {
        Self::open_after(url, None)
    }

    /// [`Subscription::open`] with a `Last-Event-ID`, as a reconnecting browser sends.
    pub fn open_after(url: &str, last_event_id: Option<&str>) -> Self {
        let mut request = reqwest::blocking::Client::builder()
            .timeout(None)
            .build()
            .unwrap()
            .get(url);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().expect("the stream answers");
        assert_eq!(response.status(), 200);
        let (sender, frames) = mpsc::channel();
        std::thread::spawn(move || {
            let mut frame = Frame::default();
            for line in BufReader::new(response).lines() {
                let Ok(line) = line else { break };
                if line.is_empty() {
                    if !frame.data.is_empty() || frame.event.is_some() {
                        let _ = sender.send(Some(std::mem::take(&mut frame)));
                    }
                    continue;
                }
                if let Some(v) = line.strip_prefix("data:") {
                    if !frame.data.is_empty() {
                        frame.data.push('\n');
                    }
                    frame.data.push_str(v.trim_start());
                } else if let Some(v) = line.strip_prefix("event:") {
                    frame.event = Some(v.trim().to_string());
                } else if let Some(v) = line.strip_prefix("id:") {
                    frame.id = Some(v.trim().to_string());
                }
            }
            // The end of the stream.
            let _ = sender.send(None);
        });
        Self { frames }
    }

    /// The next detection event (unnamed frame) that satisfies `want`, skipping others.
    pub fn wait_for(
        &self,
        within: Duration,
        want: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.frames.recv_timeout(left) {
                Ok(Some(frame)) if frame.event.is_none() => {
                    let event = frame.json();
                    if want(&event) {
                        return event;
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => panic!("the stream ended while waiting"),
                Err(_) => panic!("no matching event within {within:?}"),
            }
        }
    }

    /// Every detection event (unnamed frame) that arrives within `within`, and whether
    /// the stream ended meanwhile (it then returns early).
    pub fn events_for(&self, within: Duration) -> (Vec<serde_json::Value>, bool) {
        let deadline = Instant::now() + within;
        let mut events = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.frames.recv_timeout(left) {
                Ok(Some(frame)) if frame.event.is_none() => events.push(frame.json()),
                Ok(Some(_)) => {}
                Ok(None) => return (events, true),
                Err(_) => return (events, false),
            }
        }
    }

    /// The next frame of any kind.
    pub fn next_frame(&self, within: Duration) -> Frame {
        match self.frames.recv_timeout(within) {
            Ok(Some(frame)) => frame,
            Ok(None) => panic!("the stream ended"),
            Err(_) => panic!("no frame within {within:?}"),
        }
    }

    /// Every frame until the stream ends; panics if it does not end in time.
    pub fn until_end(&self, within: Duration) -> Vec<Frame> {
        let deadline = Instant::now() + within;
        let mut frames = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.frames.recv_timeout(left) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => return frames,
                Err(_) => panic!("the stream did not end within {within:?}; got {frames:?}"),
            }
        }
    }
}
