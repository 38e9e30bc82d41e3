//! iamplan: plan and apply AWS IAM roles, policies, users and access keys from TOML files.

pub mod model;
pub mod policy;
pub mod spec;
pub mod aws;
pub mod diff;
pub mod ops;
pub mod apply;
pub mod cli;
pub mod plan;
pub mod fsutil;
