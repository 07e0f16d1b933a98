//! Leaves that know nothing of sessions: reading values out of JSON answers without parsing
//! them whole, redacting secrets from every text sesscheck writes, and the statistics helpers
//! shared by the digest, the event stream and the report. Imports nothing of the crate.

pub mod html;
pub mod jsonseek;
pub mod open_files;
pub mod redact;
pub mod stats;
