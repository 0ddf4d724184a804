#![forbid(unsafe_code)]

pub mod auth;
pub mod command;
pub mod config;
pub mod crypto;
pub mod db;
pub mod domain;
pub mod http;
pub mod relay;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod token;
