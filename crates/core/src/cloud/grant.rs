//! `stylize runs grant`: signs, with the coordinator's account key, the narrow connection string a worker (or the KEDA scaler) gets instead of the key.
use std::time::Duration;

use anyhow::{Context, Result};
use stylize_cloud::grant::{
    expiry_after, scaler_grant, watcher_grant, worker_grant, Grant, WatcherPlaces,
};

use super::StorageOptions;

/// Default hours a grant lasts: a week. A SAS cannot be revoked short of rotating the account
/// key, so a leaked one should lapse soon; a pool should still run for days between renewals.
pub const DEFAULT_GRANT_HOURS: u32 = 168;
/// The longest grant `--hours` allows: a year.
pub const MAX_GRANT_HOURS: u32 = 24 * 366;

/// Who holds the grant.
#[derive(Debug, Clone, Copy)]
pub enum Holder<'a> {
    /// Workers: the run container and queue of the storage options, outputs in `output_container`.
    Worker { output_container: &'a str },
    /// KEDA's `azure-queue` trigger: reads the job queue's length.
    Scaler,
    /// `stylize watch`: the inbox, the outbox, the runs, and Event Grid's queue.
    Watcher(WatcherPlaces<'a>),
}

/// A grant for `holder` on `storage` (which must hold the account key), valid `hours` from now.
pub fn issue(storage: &StorageOptions, holder: Holder<'_>, hours: u32) -> Result<Grant> {
    let config = storage.config()?;
    let expiry = expiry_after(Duration::from_secs(u64::from(hours) * 3600));
    let grant = match holder {
        Holder::Worker { output_container } => worker_grant(&config, output_container, expiry),
        Holder::Scaler => scaler_grant(&config, expiry),
        Holder::Watcher(places) => watcher_grant(&config, places, expiry),
    };
    grant.context("cannot issue the grant")
}
