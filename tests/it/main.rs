//! Black-box tests: one binary, one module per area.

mod api_conventions;
mod api_ops;
mod api_templates;
mod tidy;
mod worker;
