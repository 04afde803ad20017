//! Logging into the gateway's log; the host tags every line with the backend name.

use crate::bindings::smsgw::backend::log::{Level, log};

/// Debug detail, off unless the operator enables it.
pub fn debug(message: &str) {
    emit(Level::Debug, message);
}

/// Normal operation worth recording.
pub fn info(message: &str) {
    emit(Level::Info, message);
}

/// Something went wrong but the backend coped.
pub fn warn(message: &str) {
    emit(Level::Warn, message);
}

/// Something failed.
pub fn error(message: &str) {
    emit(Level::Error, message);
}

fn emit(level: Level, message: &str) {
    log(level, message);
}
