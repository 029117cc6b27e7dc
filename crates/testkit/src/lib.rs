//! Test scaffolding written once for the whole workspace. A dev-dependency
//! only: nothing that ships links it.
//!
//! - [`both!`]: run each async test function against SQLite and against
//!   PostgreSQL (skipped when no server answers).
//! - [`seeds`]: read a fuzz target's committed seed corpus, for the
//!   stable-toolchain twins of the fuzz targets.
//! - [`tls`]: a self-signed acceptor for a test server and a client that
//!   trusts exactly that certificate.

pub mod seeds;
pub mod tls;

/// Runs every named `async fn name(s: outpost_store::testing::TestStore)`
/// twice: in `mod sqlite` on a fresh SQLite store, in `mod postgres` on a
/// fresh PostgreSQL database (the test passes without running when
/// `outpost_store::testing::postgres()` finds no server). The calling crate
/// needs `outpost-store` (its `testing` module) and `tokio` with macros;
/// the paths resolve there, so this crate does not depend on the store.
#[macro_export]
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(outpost_store::testing::sqlite().await).await }
            )*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(s) = outpost_store::testing::postgres().await { super::$name(s).await }
            })*
        }
    };
}

/// The directory of a fuzz target's seeds, `fuzz/seeds/<target>` under the
/// calling crate: `seed_dir!("session")`.
#[macro_export]
macro_rules! seed_dir {
    ($target:expr) => {
        ::std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/seeds")
            .join($target)
    };
}
