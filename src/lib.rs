//! iamplan: plan and apply AWS IAM roles, policies, users and access keys from TOML files.
//!
//! Data flows one way: plan files -> `spec` -> desired state; `aws::read` -> live state;
//! `diff` (pure, per kind in `iam/`) -> `plan` (a value) -> render / `apply` / `smoke`.

pub mod access;
pub mod apply;
pub mod aws;
pub mod cli;
pub mod diff;
pub mod export;
pub mod fmtplan;
pub mod fsutil;
pub mod iam;
pub mod keys;
pub mod killpoint;
pub mod lint;
pub mod model;
pub mod ops;
pub mod output;
pub mod ownership;
pub mod plan;
pub mod policy;
pub mod smoke;
pub mod spec;
