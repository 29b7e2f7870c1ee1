//! Persistence: a Store handle whose dedicated thread owns the SQLite connection; all SQL lives here.
//!
//! Services call async methods on [`Store`]; each runs as one transaction on the store
//! thread and returns model types or a [`StoreError`], never rusqlite types.
#![cfg_attr(
    not(test),
    expect(dead_code, reason = "wired up by the service and api layers")
)]
#![cfg_attr(
    test,
    allow(dead_code, reason = "wired up by the service and api layers")
)]

mod capabilities;
mod checkpoint;
mod error;
mod events;
mod executions;
mod handle;
mod lock;
mod migrations;
mod modules;
mod sessions;
mod sql;
mod startup_files;
mod sweep;
mod templates;
#[cfg(test)]
mod test_support;

#[allow(
    unused_imports,
    reason = "the service and api layers are wired up separately"
)]
pub(crate) use self::{error::StoreError, handle::Store, modules::library_id};
