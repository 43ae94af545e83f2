//! The two back ends a hub runs on, so one test body checks both: the
//! embedded default (SQLite and files in the data directory) and the
//! shared stores several instances use (PostgreSQL and an S3-compatible
//! object store, real servers the test starts; see [`crate::SharedStores`]).
//!
//! A test written as `fn name(backend: Backend)` and listed in
//! [`on_both_backends!`](crate::on_both_backends) runs as `embedded::name`
//! and `shared::name`, so a failure names the back end it failed on.

use crate::{Hub, SharedStores, TestClock};

/// Where a hub keeps its records and ciphertexts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite and files in the data directory: the default, no server.
    Embedded,
    /// A new PostgreSQL database and a new s3s-fs bucket of the hub's own.
    Shared,
}

impl Hub {
    /// Initialises a hub (the example authority and directory) on
    /// `backend` and serves it, reading the time from `clock` if given,
    /// with extra `serve` options (e.g. `--sweep-interval 0.1`).
    pub fn start_on(backend: Backend, clock: Option<&TestClock>, options: &[&str]) -> Self {
        match backend {
            Backend::Embedded => Self::start_on_embedded(clock, options),
            Backend::Shared => Self::start_on_shared_stores(&SharedStores::start(), clock, options),
        }
    }
}

/// Runs each listed `fn name(backend: Backend)` of the test file as two
/// tests, `embedded::name` and `shared::name`:
///
/// ```ignore
/// fn a_drop_round_trips(backend: Backend) { let hub = Hub::start_on(backend, None, &[]); ... }
/// sealdrop_e2e::on_both_backends!(a_drop_round_trips);
/// ```
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod embedded {
            $(
                #[test]
                fn $name() {
                    super::$name($crate::Backend::Embedded);
                }
            )+
        }
        mod shared {
            $(
                #[test]
                fn $name() {
                    super::$name($crate::Backend::Shared);
                }
            )+
        }
    };
}
