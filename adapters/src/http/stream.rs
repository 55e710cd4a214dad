//! `GET /detect/stream` (spec A7, B "SSE you can rely on").
//!
//! Frames: a detection is `id: <n>` + `data: <DetectionEvent JSON>` with no `event:`
//! line (old clients listen with `onmessage`); an engine transition is
//! `event: availability` + `id: <n>` + `data: <the /health object>`; a subscriber that
//! fell behind gets `event: lagged` + `data: {"missed":n}` without an id. Keep-alive
//! comments (`: keep-alive`) go out when nothing else did for the configured interval.
//! `Last-Event-ID` (header, or `?lastEventId=`) replays what was buffered after it;
//! `?mediaId=` keeps one media's detections (availability events still come). The
//! response ends when the subscription does (shutdown).

use std::convert::Infallible;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use ports::{StreamEvent, StreamItem, SubscribeRequest};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::ApiError;
use super::health::HealthBody;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamQuery {
    media_id: Option<String>,
    last_event_id: Option<String>,
}

#[derive(Serialize)]
struct Lagged {
    missed: u64,
}

#[utoipa::path(get, path = "/detect/stream", tag = "detection",
    params(
        ("mediaId" = Option<String>, Query, description = "Only this media's detection events (availability events still come)"),
        ("lastEventId" = Option<u64>, Query, description = "Replay buffered events after this id (the `Last-Event-ID` header wins)"),
        ("Last-Event-ID" = Option<u64>, Header, description = "Replay buffered events after this id"),
    ),
    responses(
        (status = 200, content_type = "text/event-stream", body = ports::DetectionEvent,
            description = "Unnamed frames carry a DetectionEvent with `id:`; `event: availability` the /health object; `event: lagged` `{\"missed\":n}`; `: keep-alive` comments"),
        (status = 400, description = "Last-Event-ID is not a number", body = super::error::Detail),
    ))]
pub async fn stream(
    State(state): State<AppState>,
    Query(query): Query<StreamQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let header = headers
        .get("last-event-id")
        .map(|value| {
            value
                .to_str()
                .map(str::to_string)
                .map_err(|_| ApiError::bad_request("Last-Event-ID must be a number"))
        })
        .transpose()?;
    let after = header
        .or(query.last_event_id)
        .map(|text| text.trim().to_string())
        .filter(|text| !text.is_empty())
        .map(|text| {
            text.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!("Last-Event-ID must be a number, got {text:?}"))
            })
        })
        .transpose()?;
    let media_id = query.media_id.filter(|id| !id.is_empty());
    let subscription = state
        .service
        .subscribe(SubscribeRequest { after, media_id });
    let events = futures_util::stream::unfold(subscription, |mut subscription| async move {
        let item = subscription.next().await?;
        Some((Ok::<_, Infallible>(frame(&item)), subscription))
    });
    let mut response = Sse::new(events)
        .keep_alive(
            KeepAlive::new()
                .interval(state.sse_keep_alive)
                .text("keep-alive"),
        )
        .into_response();
    // Proxies such as nginx would otherwise hold frames back.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// One SSE frame for a stream item.
fn frame(item: &StreamItem) -> Event {
    match item {
        StreamItem::Event(sequenced) => {
            let id = sequenced.id.to_string();
            match &sequenced.event {
                StreamEvent::Detection(detection) => data(Event::default().id(id), detection),
                StreamEvent::Availability { health, replica } => data(
                    Event::default().event("availability").id(id),
                    &HealthBody::from(health).with_replica(replica.clone()),
                ),
            }
        }
        StreamItem::Lagged { missed } => data(
            Event::default().event("lagged"),
            &Lagged { missed: *missed },
        ),
    }
}

fn data(event: Event, body: &impl Serialize) -> Event {
    // serde_json never writes a raw newline in its compact form, so one `data:` line
    // holds the whole object.
    match serde_json::to_string(body) {
        Ok(json) => event.data(json),
        Err(error) => {
            tracing::error!(%error, "an SSE event could not be serialised");
            event.comment("unserialisable event")
        }
    }
}
