//! What every handler shares: the application state, registered once as app data.

use std::sync::Arc;

use deadpool_postgres::Pool;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::command::Writer;
use crate::config::Config;
use crate::relay::RelayStatus;

pub struct AppState {
    pub pool: Pool,
    pub writer: Writer,
    pub config: Arc<Config>,
    pub relay: RelayStatus,
    pub metrics: PrometheusHandle,
    pub verifier: crate::token::Verifier,
    pub auth: crate::auth::flows::Authenticator,
    /// This instance's entitlement index (lookups, `check`, policy versions, minting).
    pub index: Arc<charter_projections::index::Index>,
}
