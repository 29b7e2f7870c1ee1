//! Black-box tests: one binary, one module per area.

mod tidy;
mod worker;
