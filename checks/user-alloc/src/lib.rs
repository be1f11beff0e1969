//! Empty: the check is `tests/user_alloc.rs`.
