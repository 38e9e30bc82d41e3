//! iamplan: plan and apply AWS IAM roles, policies, users and access keys from TOML files.

pub mod apply;
pub mod aws;
pub mod cli;
pub mod diff;
pub mod fsutil;
pub mod keys;
pub mod model;
pub mod ops;
pub mod plan;
pub mod policy;
pub mod smoke;
pub mod spec;
