//! [`ConfigError`], what every config's `validate()` returns; it lives in
//! [`crate::model::config`] so that `net/` shares it without depending on the core.

pub use crate::model::config::ConfigError;
pub(crate) use crate::model::config::{at_least_one, positive};
