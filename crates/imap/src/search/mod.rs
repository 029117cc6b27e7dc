//! SEARCH, SORT and THREAD evaluation over stored messages (pure: no I/O).
