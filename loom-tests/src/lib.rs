//! Loom models of gilock's primitives. The models live in `tests/`; build
//! them with `RUSTFLAGS="--cfg loom" cargo test -p loom-tests --release`.
//! Without `--cfg loom` this crate is empty.
