//! Region names, checked before any call: a typo in `--region` or a profile otherwise
//! surfaces as a connection error to a host that does not exist.

use crate::spec::nearest;

/// The regions of the aws, aws-cn and aws-us-gov partitions (2026-11). A region newer than
/// this list is refused with the list's nearest name; add it here.
pub const REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "cn-north-1",
    "cn-northwest-1",
    "us-gov-east-1",
    "us-gov-west-1",
];

#[derive(Debug, thiserror::Error)]
#[error("\"{region}\" is not an AWS region{}", match .nearest {
    Some(n) => format!("; did you mean \"{n}\"?"),
    None => String::new(),
})]
pub struct UnknownRegion {
    pub region: String,
    pub nearest: Option<&'static str>,
}

/// The partition a region belongs to.
pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

pub fn check(region: &str) -> Result<(), UnknownRegion> {
    if REGIONS.contains(&region) {
        return Ok(());
    }
    Err(UnknownRegion {
        region: region.to_string(),
        nearest: nearest(region, REGIONS.iter().copied()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_are_refused_with_the_nearest_region() {
        assert!(check("eu-west-1").is_ok());
        let e = check("us-eats-1").unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"us-eats-1\" is not an AWS region; did you mean \"us-east-1\"?"
        );
        assert_eq!(check("mars-1").unwrap_err().nearest, None);
    }
}
