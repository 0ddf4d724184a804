//! The HTTP edge. Reading order: [`routes`] (every route, what it requires, and its handler
//! in [`api`]), [`authorize`] (the gate before routing), [`principal`] (the caller a handler
//! sees), [`extract`] and [`respond`] (what handlers share), [`problem`] (every error's
//! answer); the OpenAPI vocabulary is in [`docs`] and [`openapi`].

pub mod access;
pub mod api;
pub mod authorize;
pub mod client_ip;
pub mod docs;
pub mod extract;
pub mod middleware;
pub mod openapi;
pub mod principal;
pub mod problem;
pub mod respond;
pub mod routes;
pub mod state;
