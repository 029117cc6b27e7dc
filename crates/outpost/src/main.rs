//! `outpost`: one program for self-hosted mail — directory, SMTP, IMAP,
//! POP3 and (later) Sieve, DAV and Exchange access — with one config file
//! and one data directory.

mod backends;
mod cli;
mod dav_store;
mod dkim;
mod eas_store;
mod gal_refresh;
mod imap_store;
mod outbound;
mod serve;
mod setup;
mod sieve_backend;
mod sieve_import;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    tune_allocator();
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

/// Logins verify argon2id hashes, each with a 19 MiB working buffer. glibc
/// serves such blocks with mmap, but after the first one is freed it raises
/// its mmap threshold and keeps later ones on the heap, resident for good:
/// 1,000 idle IMAP sessions then cost ~1 GB. A fixed threshold keeps large
/// buffers on mmap, returned to the system when freed.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}
