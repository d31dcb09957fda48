//! A JetStream key-value bucket as the nodes use it (docs/spec.md §11.8),
//! made without asking the server for its account's limits: the client's
//! own `create_key_value` does, and cannot read the answer of the NATS 2.9
//! servers that Debian ships. The stream is laid out as the client lays a
//! bucket out, so the client's key-value calls work on it.

use async_nats::Client;
use async_nats::jetstream::{self, kv, stream};

/// Opens bucket `config.bucket`, making it as `config` says when it is not
/// there. A bucket made already (by another node, perhaps with other
/// settings) is used as it is.
pub async fn open_bucket(client: Client, config: kv::Config) -> Result<kv::Store, String> {
    let js = jetstream::new(client);
    let bucket = config.bucket.clone();
    let stream = stream::Config {
        name: format!("KV_{bucket}"),
        description: Some(config.description),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: config.history.max(1),
        max_bytes: config.max_bytes,
        max_age: config.max_age,
        max_message_size: config.max_value_size,
        storage: config.storage,
        allow_rollup: true,
        deny_delete: true,
        deny_purge: false,
        allow_direct: true,
        num_replicas: config.num_replicas.max(1),
        discard: stream::DiscardPolicy::New,
        ..Default::default()
    };
    let created = js.create_stream(stream).await.err();
    js.get_key_value(bucket.clone())
        .await
        .map_err(|e| match created {
            Some(created) => format!("cannot make bucket {bucket}: {created}"),
            None => format!("cannot open bucket {bucket}: {e}"),
        })
}
