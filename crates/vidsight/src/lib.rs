//! The vidsight application: wiring of backends, the roles, and the process lifecycle.
//! `main.rs` is only the command line over this library; integration tests start the real
//! server through [`app::start`].

pub mod accounts_cli;
pub mod app;
pub mod ask_cli;
pub mod migrate_data;
pub mod providers;
