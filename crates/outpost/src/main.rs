//! `outpost`: one program for self-hosted mail — directory, SMTP, IMAP,
//! POP3 and (later) Sieve, DAV and Exchange access — with one config file
//! and one data directory.

mod backends;
mod cli;
mod delivery;
mod dkim;
mod outbound;
mod serve;
mod setup;
mod sieve_backend;
mod sieve_delivery;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("outpost: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(cli::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("outpost: {e:#}");
            match e.downcast_ref::<cli::ExitWith>() {
                Some(cli::ExitWith(code, _)) => ExitCode::from(*code),
                None => ExitCode::FAILURE,
            }
        }
    }
}
