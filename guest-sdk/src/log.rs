//! Logging into the gateway's log; the host tags every line with the backend name.

use crate::bindings::smsgw::backend::log::{Level, log};

/// Debug detail, off unless the operator enables it.
pub fn debug(message: &str) {
    log(Level::Debug, message);
}

/// Normal operation worth recording.
pub fn info(message: &str) {
    log(Level::Info, message);
}

/// Something went wrong but the backend coped.
pub fn warn(message: &str) {
    log(Level::Warn, message);
}

/// Something failed.
pub fn error(message: &str) {
    log(Level::Error, message);
}
