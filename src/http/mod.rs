//! HTTP as sesscheck speaks it: the transport (TCP/TLS, bounded reads), sesscheck's own
//! connection pool shared by every user, and the per-user client with its cookie jar and the
//! fast path for repeated `Set-Cookie`s. May import `observe` (failures are recorded as
//! observations), `scenario` and `util`; nothing of the load, judge or report.

pub mod client;
pub mod cookie_values;
pub mod pool;
pub mod seen_cookies;
pub mod transport;
