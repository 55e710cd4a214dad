//! Application core.
