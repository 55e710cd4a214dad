//! `detections dead-letters [--replay]`: the annotations of a cluster that could not be
//! delivered, one JSON line each (`sequence`, `key`, `mediaId`, `reason`, `replayed`).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use adapters::cluster::nats::{dead_letters as list, replay};

use crate::cli::DeadLettersArgs;
use crate::compose::cluster::connect;
use crate::config::{ClusterConfig, Config};
use crate::fail;

pub async fn dead_letters(config: &Config, args: DeadLettersArgs) -> ExitCode {
    let ClusterConfig::Nats(nats) = &config.cluster else {
        return fail(
            "dead letters live on the broker: set [cluster] kind = \"nats\" (or NATS_URL)",
        );
    };
    let broker = match connect(config, nats).await {
        Ok(broker) => broker,
        Err(e) => return fail(e),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !broker.is_connected() {
        if Instant::now() > deadline {
            return fail(format!("the broker at {} does not answer", nats.url));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let letters = match list(&broker).await {
        Ok(letters) => letters,
        Err(e) => return fail(e),
    };
    for letter in letters {
        let replayed = if args.replay {
            match replay(&broker, letter.sequence).await {
                Ok(replayed) => replayed,
                Err(e) => return fail(e),
            }
        } else {
            false
        };
        let mut line = serde_json::to_value(&letter).unwrap_or_default();
        line["replayed"] = replayed.into();
        println!("{line}");
    }
    ExitCode::SUCCESS
}
