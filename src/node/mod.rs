//! The napi layer: converts JS values and errors and drives core futures. No strategy logic.

mod convert;
mod dispatch;
mod native;
mod pinniped;
mod realm;
