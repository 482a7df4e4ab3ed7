//! The napi layer: converts JS values and errors and drives core futures. No strategy logic.

mod bound;
mod bridge;
mod convert;
mod dispatch;
mod native;
mod pinniped;
mod realm;
