//! Backstage's Kubernetes server-side authentication strategies in Rust.
//!
//! The core (everything but `node`) is plain async Rust with no dependency on napi; `node` is
//! the thin napi layer that converts JS values and errors.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod cache;
pub mod clock;
pub mod error;
pub mod http;
pub mod log;
pub mod options;
pub mod registry;
pub mod secret;
pub mod strategies;
pub mod strategy;
pub mod types;

#[cfg(feature = "node")]
mod node;
