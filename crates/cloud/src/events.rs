//! Azure Event Grid's `Microsoft.Storage.BlobCreated` events as a storage queue receives them: which blob is now complete.
//!
//! Event Grid writes one event per queue message, in the Event Grid schema (`eventType`) or the
//! CloudEvents 1.0 schema (`type`), as JSON or Base64 of the JSON. The blob is named by the
//! event's `subject`, `/blobServices/default/containers/<container>/blobs/<name>`, which holds
//! the name unescaped (the `url` escapes it).
//!
//! Only events of APIs that leave a whole blob behind count: `PutBlob`, `PutBlockList` and
//! `CopyBlob`, and `FlushWithClose` on accounts with a hierarchical namespace. There, a file's
//! `CreateFile` event arrives before a byte of it is written, and its `FlushWithClose` once the
//! upload ends; acting on the first would take a video still being uploaded.
use base64::Engine as _;
use serde_json::Value;

use crate::{Error, Result};

/// The APIs whose `BlobCreated` event means the blob's upload is complete.
pub const COMPLETING_APIS: &[&str] = &["PutBlob", "PutBlockList", "CopyBlob", "FlushWithClose"];

/// What one event says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlobEvent {
    /// A blob whose upload is complete.
    Created {
        container: String,
        /// The blob's name within the container.
        key: String,
        /// Its size as the event gives it.
        size: Option<u64>,
    },
    /// An event of no use to a watcher (another type, another service, or an upload that has
    /// only begun), with why.
    Skipped(String),
}

/// The events in one queue message (JSON or Base64 JSON; one event or an array of them).
/// [`Error::MalformedMessage`] when it is neither, or an event lacks its type or subject.
pub fn parse_event_message(body: &str) -> Result<Vec<BlobEvent>> {
    let json = decoded(body.trim())?;
    let events = match json {
        Value::Array(events) => events,
        event => vec![event],
    };
    events.iter().map(parse_event).collect()
}

fn decoded(body: &str) -> Result<Value> {
    if let Ok(json) = serde_json::from_str(body) {
        return Ok(json);
    }
    let malformed = |why: &str| {
        Error::MalformedMessage(format!(
            "an event message that is neither JSON nor Base64 of JSON ({why})"
        ))
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|_| malformed("not Base64"))?;
    serde_json::from_slice(&bytes).map_err(|_| malformed("Base64 of something else"))
}

fn parse_event(event: &Value) -> Result<BlobEvent> {
    let text = |field: &str| event.get(field).and_then(Value::as_str);
    let Some(kind) = text("eventType").or_else(|| text("type")) else {
        return Err(Error::MalformedMessage(
            "an event without eventType or type".into(),
        ));
    };
    if kind != "Microsoft.Storage.BlobCreated" {
        return Ok(BlobEvent::Skipped(format!("a {kind} event")));
    }
    let Some(subject) = text("subject") else {
        return Err(Error::MalformedMessage(
            "a BlobCreated event without a subject".into(),
        ));
    };
    let data = event.get("data");
    let api = data
        .and_then(|d| d.get("api"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if !COMPLETING_APIS.contains(&api) {
        return Ok(BlobEvent::Skipped(format!(
            "{subject}: {api:?} does not complete an upload"
        )));
    }
    let Some((container, key)) = blob_of_subject(subject) else {
        return Ok(BlobEvent::Skipped(format!("{subject}: not a blob")));
    };
    let size = data
        .and_then(|d| d.get("contentLength"))
        .and_then(Value::as_u64);
    Ok(BlobEvent::Created {
        container,
        key,
        size,
    })
}

/// `/blobServices/default/containers/<container>/blobs/<name>` → (container, name).
fn blob_of_subject(subject: &str) -> Option<(String, String)> {
    let rest = subject.strip_prefix("/blobServices/default/containers/")?;
    let (container, key) = rest.split_once("/blobs/")?;
    (!container.is_empty() && !key.is_empty()).then(|| (container.to_owned(), key.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Shaped as Azure delivers them (the documented examples of both schemas), with the
    // identifiers made up.
    const PUT_BLOCK_LIST: &str = r#"{
      "topic": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/media/providers/Microsoft.Storage/storageAccounts/mediastore",
      "subject": "/blobServices/default/containers/inbox/blobs/starry-blue/clip one.mp4",
      "eventType": "Microsoft.Storage.BlobCreated",
      "id": "831e1650-001e-001b-66ab-eeb76e069631",
      "data": {
        "api": "PutBlockList",
        "clientRequestId": "6d79dbfb-0e37-4fc4-981f-442c9ca65760",
        "requestId": "831e1650-001e-001b-66ab-eeb76e000000",
        "eTag": "0x8D4BCC2E4835CD0",
        "contentType": "video/mp4",
        "contentLength": 524288,
        "blobType": "BlockBlob",
        "url": "https://mediastore.blob.core.windows.net/inbox/starry-blue/clip%20one.mp4",
        "sequencer": "00000000000004420000000000028963",
        "storageDiagnostics": { "batchId": "b68529f3-68cd-4744-baa4-3c0498ec19f0" }
      },
      "dataVersion": "",
      "metadataVersion": "1",
      "eventTime": "2026-11-30T18:41:00.9584103Z"
    }"#;

    const CLOUD_EVENT_FLUSH: &str = r#"{
      "source": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/media/providers/Microsoft.Storage/storageAccounts/mediastore",
      "subject": "/blobServices/default/containers/inbox/blobs/vangogh/take2.mov",
      "type": "Microsoft.Storage.BlobCreated",
      "time": "2026-11-30T18:41:00.9584103Z",
      "id": "831e1650-001e-001b-66ab-eeb76e069631",
      "data": {
        "api": "FlushWithClose",
        "clientRequestId": "6d79dbfb-0e37-4fc4-981f-442c9ca65760",
        "requestId": "831e1650-001e-001b-66ab-eeb76e000000",
        "eTag": "\"0x8D4BCC2E4835CD0\"",
        "contentType": "video/quicktime",
        "contentLength": 1048576,
        "contentOffset": 0,
        "blobType": "BlockBlob",
        "url": "https://mediastore.dfs.core.windows.net/inbox/vangogh/take2.mov",
        "sequencer": "00000000000004420000000000028963",
        "storageDiagnostics": { "batchId": "b68529f3-68cd-4744-baa4-3c0498ec19f0" }
      },
      "specversion": "1.0"
    }"#;

    const CREATE_FILE: &str = r#"{
      "topic": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/media/providers/Microsoft.Storage/storageAccounts/mediastore",
      "subject": "/blobServices/default/containers/inbox/blobs/vangogh/take2.mov",
      "eventType": "Microsoft.Storage.BlobCreated",
      "id": "2a8f1c10-001e-001b-66ab-eeb76e069631",
      "data": {
        "api": "CreateFile",
        "contentType": "video/quicktime",
        "contentLength": 0,
        "blobType": "BlockBlob",
        "url": "https://mediastore.dfs.core.windows.net/inbox/vangogh/take2.mov",
        "sequencer": "00000000000004420000000000028960"
      },
      "dataVersion": "3",
      "metadataVersion": "1",
      "eventTime": "2026-11-30T18:40:58.1184103Z"
    }"#;

    const DELETED: &str = r#"{
      "topic": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/media/providers/Microsoft.Storage/storageAccounts/mediastore",
      "subject": "/blobServices/default/containers/inbox/blobs/old.mp4",
      "eventType": "Microsoft.Storage.BlobDeleted",
      "id": "3b8f1c10-001e-001b-66ab-eeb76e069631",
      "data": { "api": "DeleteBlob", "blobType": "BlockBlob",
                "url": "https://mediastore.blob.core.windows.net/inbox/old.mp4" },
      "dataVersion": "",
      "metadataVersion": "1",
      "eventTime": "2026-11-30T18:42:00.0000000Z"
    }"#;

    fn created(container: &str, key: &str, size: u64) -> BlobEvent {
        BlobEvent::Created {
            container: container.into(),
            key: key.into(),
            size: Some(size),
        }
    }

    #[test]
    fn a_finished_upload_names_its_blob_unescaped_in_both_schemas() {
        assert_eq!(
            parse_event_message(PUT_BLOCK_LIST).unwrap(),
            [created("inbox", "starry-blue/clip one.mp4", 524288)]
        );
        assert_eq!(
            parse_event_message(CLOUD_EVENT_FLUSH).unwrap(),
            [created("inbox", "vangogh/take2.mov", 1048576)]
        );
    }

    #[test]
    fn base64_messages_and_arrays_are_read_too() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(PUT_BLOCK_LIST);
        assert_eq!(
            parse_event_message(&b64).unwrap(),
            parse_event_message(PUT_BLOCK_LIST).unwrap()
        );
        let array = format!("[{CREATE_FILE},{CLOUD_EVENT_FLUSH}]");
        let events = parse_event_message(&array).unwrap();
        assert!(matches!(&events[0], BlobEvent::Skipped(why) if why.contains("CreateFile")));
        assert_eq!(events[1], created("inbox", "vangogh/take2.mov", 1048576));
    }

    #[test]
    fn an_upload_that_has_only_begun_and_other_events_are_skipped() {
        let [BlobEvent::Skipped(why)] = &parse_event_message(CREATE_FILE).unwrap()[..] else {
            panic!("CreateFile must be skipped")
        };
        assert!(why.contains("does not complete an upload"), "{why}");
        let [BlobEvent::Skipped(why)] = &parse_event_message(DELETED).unwrap()[..] else {
            panic!("BlobDeleted must be skipped")
        };
        assert!(why.contains("BlobDeleted"), "{why}");
    }

    #[test]
    fn malformed_messages_are_refused() {
        for body in [
            "not an event",
            "eyJub3QiOiAianNvbiJ9Cg==x",
            r#"{"subject": "/blobServices/default/containers/a/blobs/b"}"#,
            r#"{"eventType": "Microsoft.Storage.BlobCreated", "data": {"api": "PutBlob"}}"#,
        ] {
            assert!(
                matches!(parse_event_message(body), Err(Error::MalformedMessage(_))),
                "{body}"
            );
        }
    }
}
