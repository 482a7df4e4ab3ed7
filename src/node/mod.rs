//! The napi layer: converts JS values and errors and drives core futures. No strategy logic.

mod bridge;
mod convert;
mod dispatch;
mod native;
mod pinniped;
mod realm;
