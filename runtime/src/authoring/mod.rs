//! What backend authors use: fixtures run in the real sandbox, the admin dry
//! run, `smsgw test-backend`, `smsgw inspect` and `smsgw new` templates.

pub mod dry_run;
pub mod fixtures;
pub mod inspect;
pub mod templates;
pub mod test_backend;
