//! Charter's integration suite: one binary, real PostgreSQL, real Kafka-protocol broker.
//! Requires DATABASE_URL (a role with CREATEDB), KAFKA_BROKERS and, for the outage test,
//! TANSU_BIN; `ops/test` provides all three.

mod audit;
mod auth;
mod bad_input;
mod cli;
mod contracts;
mod entitlements;
mod event_schemas;
mod faults;
mod fuzz;
mod groups;
mod helpers;
mod index;
mod instances;
mod isolation;
mod isolation_matrix;
mod kafka;
mod layout;
mod model;
mod openapi;
mod ordering;
mod permissions;
mod poison;
mod policy_topic;
mod rate_limit;
mod replay;
mod roles;
mod sdk;
mod security;
mod seed;
mod service_accounts_platform;
mod tenants;
mod timing;
mod tokens;
mod upcasting;
mod users;
mod verbatim;
mod workspaces;
