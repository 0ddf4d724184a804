//! The security review's findings (issue 12), one module per theme; each test fails on the
//! code as it was before the fix. Delegation's cells are in `isolation_matrix::escalation`.

mod broker_tls;
mod cache;
mod edge;
mod links;
mod mfa;
mod proxy;
mod revocation;
mod upgrade;
